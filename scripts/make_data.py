"""Build the training patch arrays from photos shipped in Debian wallpaper packages.

Install the photos first (what `make data` does):

    sudo apt-get install -y plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers

then run `python scripts/make_data.py` (writes `data/`, git-ignored). Only photographic
wallpapers are used (see SOURCES); vector art, screenshots and tiny images are skipped.
Licences: DATA_LICENSES.md. Never add ../shared/datasets here: those are evaluation images.

Each photo is downscaled (Lanczos, antialiased) by several factors, so textures appear at
the scales a 240p-1080p video shows and JPEG artefacts of the originals are averaged away;
then cut into `--patch`-sized HR patches, dropping most flat ones (sky, blur). A few photos
are held out as the dev set (`DEV`) for validation PSNR.

Output: data/train_hr.npy (uint8 [N, P, P, 3]), data/dev_hr.npy (uint8 [M, D, D, 3]),
data/manifest.json (source files, factors, counts).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

APT = "apt-get install -y plasma-workspace-wallpapers mate-backgrounds lomiri-wallpapers"
PLASMA = "/usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
PLASMA_FHD = "/usr/share/wallpapers/{}/contents/images/1920x1080.jpg"
LOMIRI = "/usr/share/backgrounds/{}.jpg"
MATE = "/usr/share/backgrounds/mate/nature/{}.jpg"

# Photographs (and a few detailed paintings) only, as (package, path).
SOURCES: list[tuple[str, str]] = [
    ("plasma-workspace-wallpapers", PLASMA.format("ColorfulCups")),
    *(
        ("plasma-workspace-wallpapers", PLASMA_FHD.format(n))
        for n in (
            "Autumn",
            "BytheWater",
            "ColdRipple",
            "DarkestHour",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ),
    *(
        ("mate-backgrounds", MATE.format(n))
        for n in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ),
    ("mate-backgrounds", "/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg"),
    *(
        (
            "lomiri-wallpapers-20.04" if n.startswith("Kleiber") else "lomiri-wallpapers-16.04",
            LOMIRI.format(n),
        )
        for n in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Kleiber_by_Lukas_Baubkus",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "analogpattern_by_Peter_Nerlich",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    ),
]
# Held out for validation (never cut into training patches).
DEV = (
    MATE.format("Garden"),
    PLASMA_FHD.format("EveningGlow"),
    LOMIRI.format("Painting-Colors_by__herobrine7gamer"),
)
MIN_SIDE = 1000  # skip smaller images (icons, thumbnails)
FACTORS = (2, 3, 4, 6)  # downscale factors tried per photo
MIN_SHORT = 360  # ... keeping those whose short side stays at least this long


def load(path: str) -> Image.Image | None:
    """The photo as RGB, or None when missing or too small."""
    p = Path(path)
    if not p.is_file():
        return None
    img = Image.open(p).convert("RGB")
    return img if min(img.size) >= MIN_SIDE else None


def scales_of(img: Image.Image) -> list[Image.Image]:
    """The photo downscaled by each usable factor."""
    w, h = img.size
    return [
        img.resize((round(w / f), round(h / f)), Image.Resampling.LANCZOS)
        for f in FACTORS
        if min(w, h) / f >= MIN_SHORT
    ]


def patches(arr: np.ndarray, size: int, rng: np.random.Generator, keep_flat: float) -> list:
    """Non-overlapping patches on a randomly offset grid; most flat patches dropped."""
    h, w = arr.shape[:2]
    oy, ox = rng.integers(0, size // 2, 2)
    out = []
    for y in range(oy, h - size + 1, size):
        for x in range(ox, w - size + 1, size):
            p = arr[y : y + size, x : x + size]
            luma = p @ np.array([0.299, 0.587, 0.114])
            if luma.std() < 6 and rng.random() > keep_flat:
                continue
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=f"needs: {APT}")
    ap.add_argument("--out", type=Path, default=Path("data"))
    ap.add_argument("--patch", type=int, default=120, help="HR patch side (default 120)")
    ap.add_argument("--dev-size", type=int, default=240, help="dev crop side (default 240)")
    ap.add_argument("--keep-flat", type=float, default=0.1, help="fraction of flat patches kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    train, manifest, missing = [], {"train": [], "dev": []}, []
    for package, path in SOURCES:
        img = load(path)
        if img is None:
            missing.append(path)
            continue
        n = 0
        for scaled in scales_of(img):
            got = patches(np.asarray(scaled), args.patch, rng, args.keep_flat)
            train += got
            n += len(got)
        manifest["train"].append({"package": package, "path": path, "patches": n})
    if not train:
        raise SystemExit(f"no training photos found; install them: sudo {APT}")

    dev = []
    for path in DEV:
        img = load(path)
        if img is None:
            missing.append(path)
            continue
        scaled = np.asarray(scales_of(img)[1])  # one mid-scale version, 4 crops from it
        h, w = scaled.shape[:2]
        d = args.dev_size
        for y, x in (
            (h // 4, w // 4),
            (h // 4, 3 * w // 4),
            (3 * h // 4, w // 4),
            (h // 2, w // 2),
        ):
            dev.append(scaled[y - d // 2 : y + d // 2, x - d // 2 : x + d // 2])
        manifest["dev"].append({"path": path, "crops": 4})

    order = rng.permutation(len(train))
    np.save(args.out / "train_hr.npy", np.stack(train)[order])
    np.save(args.out / "dev_hr.npy", np.stack(dev))
    manifest.update(patch=args.patch, train_count=len(train), dev_count=len(dev), missing=missing)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{len(train)} train patches, {len(dev)} dev crops -> {args.out}/")
    if missing:
        print(f"missing (skipped): {len(missing)}: {', '.join(missing)}")


if __name__ == "__main__":
    main()
