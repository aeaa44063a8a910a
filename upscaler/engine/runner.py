"""`Upscaler`: a loaded model on a device, turning batches of Y'CbCr planes into bigger ones."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil
import torch

from upscaler.engine.colour import rgb_to_ycbcr, ycbcr_to_rgb
from upscaler.engine.memory import tune_malloc
from upscaler.engine.tiling import auto_tile, tiled_forward
from upscaler.errors import UpscalerError
from upscaler.models import load_model
from upscaler.models.base import SRModel
from upscaler.models.resample import imresize

#: Rough activation bytes per output pixel per frame, for choosing tiles from free memory.
_BYTES_PER_OUTPUT_PIXEL = {"y": 4 * 64, "rgb": 4 * 64 * 4}


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UpscalerError("--device cuda was asked for but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UpscalerError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def configure_cpu_threads(threads: int | None = None) -> int:
    """Use one torch thread per physical core (hyper-threads slow convolutions down)."""
    count = threads or psutil.cpu_count(logical=False) or os.cpu_count() or 1
    torch.set_num_threads(count)
    return count


@dataclass
class Planes:
    """A batch of Y'CbCr frames as float tensors in the engine's normalised domain.

    `cb`/`cr` may be subsampled (4:2:0, 4:2:2) or None for grey video.
    """

    y: torch.Tensor
    cb: torch.Tensor | None
    cr: torch.Tensor | None


class Upscaler:
    """A model ready to run: device, precision, tiling and the colour handling around it."""

    def __init__(
        self,
        model: str | SRModel,
        scale: int,
        device: str = "auto",
        tile: int | None = None,
        half: bool | None = None,
    ) -> None:
        tune_malloc()  # flat memory over long videos (see engine.memory)
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            configure_cpu_threads()
        self.model = load_model(model, scale, self.device) if isinstance(model, str) else model
        self.model = self.model.eval().to(self.device)
        self.name = model if isinstance(model, str) else type(model).__name__
        self.scale = scale
        self.tile = tile  # None: choose from memory; 0: never tile; N: N-pixel tiles
        if half is None:  # fp16 on CUDA, unless the model says it breaks in fp16
            half = self.device.type == "cuda" and getattr(self.model, "supports_half", True)
        self.half = half
        if self.half:
            self.model = self.model.half()

    @property
    def channels(self) -> str:
        return self.model.channels

    def _tile_for(self, batch: int, height: int, width: int) -> int:
        if self.tile is not None:
            return self.tile
        if not getattr(self.model, "tiling_allowed", True):  # needs the whole frame
            return 0
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
        else:
            free = psutil.virtual_memory().available
        per_pixel = _BYTES_PER_OUTPUT_PIXEL[self.channels] // (2 if self.half else 1)
        return auto_tile(height, width, batch, self.scale, free // 4, per_pixel)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.device.type == "cuda":
            x = x.pin_memory()  # lets the copy overlap with work already queued on the GPU
        x = x.to(self.device, torch.float16 if self.half else torch.float32, non_blocking=True)
        margin = self.model.receptive_field
        y = tiled_forward(self.model, x, self.scale, self._tile_for(n, h, w), margin)
        return y.float()

    @torch.inference_mode()
    def upscale(self, planes: Planes, matrix: str = "bt601", full_range: bool = False) -> Planes:
        """Upscale a batch. Luma models see Y only and chroma follows by MATLAB bicubic;
        RGB models see R'G'B' made with the video's own matrix and range."""
        h, w = planes.y.shape[-2:]
        out_h, out_w = h * self.scale, w * self.scale
        if planes.cb is None or planes.cr is None:
            y = self._forward(planes.y) if self.channels == "y" else self._grey_rgb(planes.y)
            return Planes(y.cpu(), None, None)
        ch, cw = planes.cb.shape[-2:]
        chroma_size = (-(-out_h * ch // h), -(-out_w * cw // w))
        if self.channels == "y":
            y = self._forward(planes.y).cpu()
            chroma = imresize(torch.cat([planes.cb, planes.cr], dim=1), size=chroma_size)
            return Planes(y, chroma[:, 0:1], chroma[:, 1:2])
        full = imresize(torch.cat([planes.cb, planes.cr], dim=1), size=(h, w))
        rgb = ycbcr_to_rgb(planes.y, full[:, 0:1], full[:, 1:2], matrix, full_range)
        out = self._forward(rgb.clamp(0, 1)).cpu()
        y, cb, cr = rgb_to_ycbcr(out, matrix, full_range)
        chroma = imresize(torch.cat([cb, cr], dim=1), size=chroma_size)
        return Planes(y, chroma[:, 0:1], chroma[:, 1:2])

    def _grey_rgb(self, y: torch.Tensor) -> torch.Tensor:
        out = self._forward(y.expand(-1, 3, -1, -1)).cpu()
        return out.mean(dim=1, keepdim=True)
