"""Community model files through spandrel: small nets built here, saved, loaded, compared."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import run_cli
from upscaler.engine import onnx_runtime
from upscaler.engine.runner import Planes, Upscaler
from upscaler.errors import ModelError
from upscaler.models import load_model
from upscaler.models.community import CommunityModel, _import_spandrel

_import_spandrel()  # before spandrel is imported below (see its docstring)
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402

ARCHS = {
    "compact": lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2),
    "esrgan": lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4),
    "span": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2),
    "swinir": lambda: SwinIR(
        img_size=16,
        embed_dim=12,
        depths=[1],
        num_heads=[2],
        window_size=4,
        mlp_ratio=2.0,
        upscale=2,
        upsampler="pixelshuffle",
    ),
}


def _net(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    net = ARCHS[arch]().eval()
    with torch.no_grad():  # non-trivial weights everywhere (some inits are zeros)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return net


def _save(net: torch.nn.Module, path) -> None:
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"params_ema": state}, path)  # as Real-ESRGAN/BasicSR releases wrap it


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_loads_and_matches_the_architecture_run_directly(arch, suffix, tmp_path):
    net = _net(arch)
    scale = 4 if arch == "esrgan" else 2
    path = tmp_path / f"{arch}{suffix}"
    _save(net, path)
    model = load_model(str(path), scale)
    assert isinstance(model, CommunityModel) and model.channels == "rgb"
    assert not onnx_runtime.exportable(model)  # stays on eager whatever the size
    x = torch.rand(2, 3, 16, 20)  # 16x20: a multiple of SwinIR's window, no padding
    with torch.inference_mode():
        assert torch.allclose(model(x), net(x).clamp(0, 1), atol=1e-6)


def test_engine_features_tiling_batching_and_odd_sizes(tmp_path):
    path = tmp_path / "swinir.pth"
    _save(_net("swinir"), path)
    y, cb, cr = torch.rand(3, 1, 1, 37, 45)  # odd: padded to the window by spandrel
    planes = Planes(y, cb[..., ::2, ::2].contiguous(), cr[..., ::2, ::2].contiguous())
    whole = Upscaler(str(path), 2, "cpu", tile=0).upscale(planes)
    assert whole.y.shape == (1, 1, 74, 90) and whole.cb.shape == (1, 1, 38, 46)
    compact = tmp_path / "compact.safetensors"
    _save(_net("compact"), compact)
    batch = Planes(*(torch.rand(3, 1, 70, 90) for _ in range(3)))
    untiled = Upscaler(str(compact), 2, "cpu", tile=0).upscale(batch)
    tiled = Upscaler(str(compact), 2, "cpu", tile=32).upscale(batch)
    assert (untiled.y - tiled.y).abs().max() < 1e-5  # margin 32 > its receptive field


def test_describe_from_the_cli(tmp_path):
    path = tmp_path / "span.safetensors"
    _save(_net("span"), path)
    done = run_cli("models", "--file", str(path), "--json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["architecture"] == "SPAN" and facts["scale"] == 2
    assert facts["params"] == sum(p.numel() for p in _net("span").parameters())
    assert facts["colour"].startswith("RGB") and facts["source"] == "community (spandrel)"


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("payload", "scale", "message"),
    [
        ("pickle", 2, "not a readable checkpoint"),
        ("unknown", 2, "unknown model architecture"),
        ("wrong-scale", 4, "x2 RealESRGAN Compact model, not x4; use --scale 2"),
    ],
)
def test_bad_files_fail_with_one_line(payload, scale, message, tmp_path):
    path = tmp_path / "m.pth"
    if payload == "pickle":  # code in the pickle: refused by weights_only, never run
        path.write_bytes(pickle.dumps({"params": _Exploit()}))
    elif payload == "unknown":
        torch.save({"encoder.w": torch.zeros(3, 3)}, path)
    else:
        _save(_net("compact"), path)
    with pytest.raises(ModelError, match=message) as err:
        load_model(str(path), scale)
    assert "\n" not in str(err.value)


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.safetensors"
    _save(_net("compact"), path)
    monkeypatch.setattr("upscaler.models.community.MAX_MODEL_BYTES", 1000)
    with pytest.raises(ModelError, match="over the 0 MiB limit"):
        load_model(str(path), 2)


def test_cli_upscale_with_a_community_file_reports_a_clean_error(tmp_path, basic_clip):
    path = tmp_path / "m.pth"
    torch.save({"encoder.w": torch.zeros(3, 3)}, path)
    done = run_cli("upscale", str(basic_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(path))
    assert done.returncode == 4 and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "o.mp4").exists()
