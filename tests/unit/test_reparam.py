"""Re-parameterised convs fold exactly into the plain net, and start at a plain net's output."""

from __future__ import annotations

import torch

from upscaler.models.fast import FastSR
from upscaler.models.reparam import RepConv3x3, fold


def _randomise(model: torch.nn.Module) -> None:
    """Non-zero branches everywhere (they start at zero), so the fold has work to do."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def test_folded_conv_equals_its_branches():
    conv = RepConv3x3(5, 7)
    _randomise(conv)
    x = torch.randn(2, 5, 9, 11)
    weight, bias = conv.folded()
    torch.testing.assert_close(
        torch.nn.functional.conv2d(x, weight, bias, padding=1), conv(x), atol=1e-5, rtol=1e-5
    )


def test_folded_fast_is_the_plain_fast_with_the_same_output():
    wide = FastSR(2, width=8, depth=3, reparam=True).eval()
    _randomise(wide)
    state, config = fold(wide, {"width": 8, "depth": 3, "reparam": True})
    assert config == {"width": 8, "depth": 3}
    plain = FastSR(2, **config).eval()
    plain.load_state_dict(state)  # strict: no branch tensors left over, none missing
    x = torch.rand(1, 1, 14, 18)
    torch.testing.assert_close(plain(x), wide(x), atol=1e-5, rtol=1e-4)


def test_plain_weights_load_into_the_wide_net_as_the_same_model():
    plain = FastSR(2, width=8, depth=3).eval()
    wide = FastSR(2, width=8, depth=3, reparam=True).eval()
    missing, unexpected = wide.load_state_dict(plain.state_dict(), strict=False)
    branches = (".point.", ".expand.", ".squeeze.")
    assert not unexpected and missing and all(any(b in k for b in branches) for k in missing)
    x = torch.rand(1, 1, 12, 12)
    torch.testing.assert_close(wide(x), plain(x))
