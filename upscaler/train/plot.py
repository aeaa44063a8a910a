"""Training curve: loss and validation PSNR against step, saved as a PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curve(
    history: dict[str, list], path: str | Path, title: str = "", channels: str = "y"
) -> None:
    """`history`: {"loss": [[step, value]...], "psnr": [[step, db]...], "baseline": db}.

    `channels` names what the dev PSNR was measured on ("y" or "rgb").
    """
    metric = f"dev PSNR-{channels.upper()}"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if history.get("loss"):
        steps, values = zip(*history["loss"], strict=True)
        ax.plot(steps, values, color="tab:blue", lw=0.8, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    ax.set_yscale("log")
    if history.get("psnr"):
        ax2 = ax.twinx()
        steps, values = zip(*history["psnr"], strict=True)
        ax2.plot(steps, values, color="tab:red", marker=".", label=f"{metric} (EMA)")
        if history.get("baseline"):
            ax2.axhline(history["baseline"], color="gray", ls="--", label="bicubic")
        ax2.set_ylabel(f"{metric} (dB)", color="tab:red")
        ax2.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
