"""Limits on the image path (docs/RELIABILITY.md, known gap 7), through the CLI: the number of
images in a directory, each image's input and output pixels read from its header, Pillow's
decompression-bomb guard. Every refusal happens before the model loads and before anything
is written, with a one-line message and exit 3 (2 for an unusable input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.reliability.conftest import leftovers
from tests.reliability.corpus import png_claiming
from upscaler import cli
from upscaler.engine import image, runner


def images(d: Path, names: list[str], size: tuple[int, int] = (12, 8)) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(d / name)
    return d


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: refusals must come before it. (Only the CLI's lookup
    is replaced: `image` was imported above, so its own `Upscaler` stays the real class.)"""
    assert image.Upscaler is runner.Upscaler

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was refused")

    monkeypatch.setattr(runner, "Upscaler", refuse)


def run(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = cli.main(["upscale", "--model", "bicubic", *argv])
    return code, capsys.readouterr().err.strip().splitlines()


def test_directory_over_the_image_count_limit_is_refused(tmp_path, monkeypatch, capsys, no_model):
    monkeypatch.setenv("UPSCALER_MAX_IMAGES", "3")
    src, out = images(tmp_path / "in", ["a.png", "b.png", "c.jpg", "d.png"]), tmp_path / "out"
    code, err = run([str(src), "-o", str(out)], capsys)
    assert code == 3, err
    assert err == [f"upscaler: error: {src}: over the limit of 3 images"]
    assert not out.exists()


def test_directory_at_the_image_count_limit_is_upscaled(tmp_path, monkeypatch):
    """Through a real subprocess: the environment variable reaches the CLI."""
    monkeypatch.setenv("UPSCALER_MAX_IMAGES", "3")
    src = images(tmp_path / "in", ["a.png", "b.png", "c.jpg"])
    (src / "notes.txt").write_text("not an image: not counted")
    out = tmp_path / "out"
    proc = run_cli("upscale", str(src), "-o", str(out), "--model", "bicubic")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    monkeypatch.setenv("UPSCALER_MAX_IMAGES", "2")
    proc = run_cli("upscale", str(src), "-o", str(tmp_path / "out2"), "--model", "bicubic")
    assert proc.returncode == 3 and proc.stderr.strip().endswith("over the limit of 2 images")
    assert not (tmp_path / "out2").exists()


def test_one_oversized_image_refuses_the_directory_before_any_output(tmp_path, capsys, no_model):
    """The big image sorts last: before, a.png and b.png were written before the refusal."""
    src = images(tmp_path / "in", ["a.png", "b.png"])
    png_claiming(src / "z.png", 5000, 5000)  # over the default 4096x2304 input limit
    out = tmp_path / "out"
    code, err = run([str(src), "-o", str(out)], capsys)
    assert code == 3, err
    assert err == [f"upscaler: error: {src / 'z.png'}: 5000x5000 is over the limit of "
                   f"{4096 * 2304} pixels"]  # fmt: skip
    assert not out.exists()


def test_unreadable_image_refuses_the_directory_before_any_output(tmp_path, capsys, no_model):
    src = images(tmp_path / "in", ["a.png", "b.png"])
    (src / "c.png").write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "out"
    code, err = run([str(src), "-o", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "c.png: not a readable image" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("directory", [False, True])
def test_output_pixel_limit_applies_to_images(tmp_path, monkeypatch, capsys, directory):
    monkeypatch.setenv("UPSCALER_MAX_OUTPUT_PIXELS", str(40 * 30))  # 12x8 x3 = 36x24 fits
    src = images(tmp_path / "in", ["a.png"])
    arg, out = (src, tmp_path / "out") if directory else (src / "a.png", tmp_path / "a_x.png")
    code, err = run([str(arg), "-o", str(out), "--scale", "4"], capsys)
    assert code == 3, err
    assert err == [f"upscaler: error: {src / 'a.png'}: the x4 output 48x32 is over the limit "
                   "of 1200 pixels; use a smaller --scale"]  # fmt: skip
    assert not out.exists()
    code, err = run([str(arg), "-o", str(out), "--scale", "3"], capsys)
    assert code == 0, err
    written = out / "a.png" if directory else out
    assert Image.open(written).size == (36, 24)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("claimed", "words"),
    [
        # over Pillow's warning threshold (89 M pixels): its multi-line DecompressionBombWarning
        # used to be printed before our own one-line refusal
        ((10000, 10000), "10000x10000 is over the limit of"),
        # over Pillow's error threshold (179 M pixels) even with our limit raised
        ((30000, 30000), "refused by Pillow's decompression-bomb guard: Image size"),
    ],
)
def test_decompression_bombs_are_one_line_exit_3(
    tmp_path, monkeypatch, capsys, no_model, claimed, words
):
    if claimed[0] > 10000:
        monkeypatch.setenv("UPSCALER_MAX_INPUT_PIXELS", str(1 << 40))
        monkeypatch.setenv("UPSCALER_MAX_OUTPUT_PIXELS", str(1 << 42))
    src = png_claiming(tmp_path / "bomb.png", *claimed)
    out = tmp_path / "out.png"
    code, err = run([str(src), "-o", str(out)], capsys)
    assert code == 3, err
    assert len(err) == 1 and words in err[0], err
    assert not out.exists()


def test_two_inputs_writing_the_same_output_are_refused(tmp_path, capsys, no_model):
    src, out = images(tmp_path / "in", ["a.png", "a.jpg", "b.png"]), tmp_path / "out"
    code, err = run([str(src), "-o", str(out)], capsys)
    assert code == 2, err
    assert err == [f"upscaler: error: {src}: a.jpg and a.png would both write a.png"]
    assert not out.exists()


def test_image_count_limit_default_and_environment(monkeypatch):
    from upscaler.media.limits import Limits

    monkeypatch.delenv("UPSCALER_MAX_IMAGES", raising=False)
    assert Limits.from_env().max_images == 10_000
    monkeypatch.setenv("UPSCALER_MAX_IMAGES", "7")
    assert Limits.from_env().max_images == 7
