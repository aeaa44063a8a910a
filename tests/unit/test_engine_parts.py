"""Pure logic of the engine: resampling, colour conversion, tiling, chunk planning."""

from __future__ import annotations

import os
import signal
import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from upscaler.engine.colour import matrix_name, rgb_to_ycbcr, ycbcr_to_rgb
from upscaler.engine.pipeline import _Stage
from upscaler.engine.tiling import auto_tile, tiled_forward
from upscaler.media.chunks import plan_chunks
from upscaler.media.probe import Colour, MediaInfo, PacketIndex, VideoInfo, is_variable_rate
from upscaler.models import load_model
from upscaler.models.resample import _resize_axis, imresize


@pytest.mark.parametrize("kernel", ["cubic", "lanczos3"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_integer_upscale_fast_path_matches_general_path(kernel, scale):
    x = torch.rand(2, 1, 29, 41)
    general = x
    for dim, size in ((2, 29 * scale), (3, 41 * scale)):
        general = _resize_axis(general, size, dim, kernel, True)
    assert torch.allclose(imresize(x, scale=scale, kernel=kernel), general, atol=1e-5)


def test_downscale_then_sizes():
    x = torch.rand(1, 3, 50, 70)
    assert imresize(x, scale=0.5).shape == (1, 3, 25, 35)
    assert imresize(x, size=(33, 47)).shape == (1, 3, 33, 47)
    flat = torch.full((1, 1, 16, 16), 0.25)
    assert torch.allclose(imresize(flat, scale=0.5), flat[..., :8, :8])  # weights sum to 1


@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("full_range", [False, True])
def test_colour_round_trip(matrix, full_range):
    rgb = torch.rand(2, 3, 8, 8)
    y, cb, cr = rgb_to_ycbcr(rgb, matrix, full_range)
    assert torch.allclose(ycbcr_to_rgb(y, cb, cr, matrix, full_range), rgb, atol=1e-5)


def test_studio_range_levels():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_ycbcr(white, "bt709", False)[0].item() == pytest.approx(235 / 255)
    assert rgb_to_ycbcr(black, "bt709", False)[0].item() == pytest.approx(16 / 255)


def test_matrix_guess_follows_ffmpeg_numbers():
    assert matrix_name(1, 240) == "bt709"
    assert matrix_name(6, 1080) == "bt601"
    assert matrix_name(2, 480) == "bt601" and matrix_name(2, 720) == "bt709"


def test_tiled_forward_equals_whole_frame():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 4, 3, padding=1),
        nn.PixelShuffle(2),
    ).eval()
    x = torch.rand(2, 1, 70, 90)
    with torch.inference_mode():
        whole = net(x)
        tiled = tiled_forward(net, x, scale=2, tile=32, margin=4)
    assert (whole - tiled).abs().max().item() < 1e-5


def test_auto_tile_only_when_needed():
    assert auto_tile(240, 426, 4, 2, budget_bytes=1 << 30, bytes_per_pixel=256) == 0
    tile = auto_tile(2160, 3840, 4, 4, budget_bytes=1 << 30, bytes_per_pixel=256)
    assert 64 <= tile < 2160 and tile % 64 == 0


def _info(n: int, tb: Fraction) -> MediaInfo:
    video = VideoInfo(
        0,
        "h264",
        64,
        48,
        "yuv420p",
        8,
        tb,
        Fraction(25),
        n,
        False,
        n / 25,
        0,
        Colour(),
        0,
        Fraction(1),
        Fraction(4, 3),
    )
    return MediaInfo("x.mp4", "mp4", 1, n / 25, video)


def test_plan_chunks_cuts_at_keyframes_only():
    n = 100
    pts = np.arange(n, dtype=np.int64)
    key = np.zeros(n, bool)
    key[::10] = True
    packets = PacketIndex(pts, pts, np.ones(n, np.int64), key)
    chunks = plan_chunks(_info(n, Fraction(1, 25)), packets, seconds=1.0)
    assert [c.first_packet for c in chunks] == [0, 30, 60, 90]
    assert sum(c.frame_count for c in chunks) == n
    assert all(key[c.first_packet] for c in chunks)
    assert chunks[-1].end_pts == n


def test_variable_rate_detection():
    assert not is_variable_rate(np.arange(0, 300, 10))
    assert is_variable_rate(np.array([0, 10, 20, 35, 45, 55, 70]))


def test_tiled_fast_model_has_no_seams():
    from upscaler.models import load_model

    model = load_model("fast", 2)
    x = torch.rand(1, 1, 150, 230)
    with torch.inference_mode():
        whole = model(x)
        tiled = tiled_forward(model, x, scale=2, tile=64, margin=model.receptive_field)
    # Same neighbourhood for every output pixel: only float rounding differs.
    assert (whole - tiled).abs().max().item() < 1e-4


def test_atomic_output_removes_partials_of_dead_writers(tmp_path):
    import subprocess
    import sys

    from upscaler.media.writer import atomic_output

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".out.partial-{dead.stdout.strip()}.mp4"
    alive = tmp_path / f".out.partial-{os.getppid()}.mp4"  # our parent: a live process
    other = tmp_path / ".other.partial-1.mp4"
    for f in (stale, alive, other):
        f.write_bytes(b"half")
    with atomic_output(tmp_path / "out.mp4") as tmp:
        tmp.write_bytes(b"whole")
    assert (tmp_path / "out.mp4").read_bytes() == b"whole"
    assert not stale.exists() and alive.exists() and other.exists()


def _interrupt_main_after(seconds: float) -> threading.Thread:
    """SIGINT to this (main) thread after `seconds`, as a Ctrl-C would arrive."""
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


def test_stage_wait_survives_ctrl_c_where_join_does_not():
    """python/cpython#90882: on 3.11 a Ctrl-C inside Thread.join() marks a running thread
    as stopped, so the next join() returns at once; the pipeline's Stage.wait() must not."""
    release = threading.Event()
    done: list[str] = []

    def work() -> None:
        release.wait(5)
        done.append("finished")

    stage = _Stage(work, "test", threading.Event())
    stage.start()
    timer = _interrupt_main_after(0.1)
    with pytest.raises(KeyboardInterrupt):
        stage.wait()
    timer.join()
    threading.Timer(0.2, release.set).start()
    stage.wait()  # must really wait for the thread, not return early
    assert done == ["finished"] and not stage.is_alive()


@pytest.mark.parametrize(("h", "w"), [(29, 41), (2, 7)])
def test_bicubic_baseline_is_imresize(h, w):
    """`bicubic` runs as `BicubicChroma`'s conv where the factor allows (tiny planes: imresize
    itself); either way the values are imresize's."""
    x = torch.rand(2, 1, h, w)
    model = load_model("bicubic", 2)
    assert torch.allclose(model(x), imresize(x, scale=2), atol=1e-5)
