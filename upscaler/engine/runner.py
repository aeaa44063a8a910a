"""`Upscaler`: a loaded model on a device, turning batches of Y'CbCr planes into bigger ones."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil
import torch

from upscaler.engine.chroma import BicubicChroma, chroma_factor, upscale_chroma
from upscaler.engine.colour import rgb_to_ycbcr, to_codes, ycbcr_to_rgb
from upscaler.engine.fused import FusedYuv, fused_session
from upscaler.engine.memory import tune_malloc
from upscaler.engine.onnx_runtime import RuntimeSelector
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


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Upscaler:
    """A model ready to run: device, precision, tiling and the colour handling around it."""

    def __init__(
        self,
        model: str | SRModel,
        scale: int,
        device: str = "auto",
        tile: int | None = None,
        precision: str = "auto",
        runtime: str = "auto",
        compile: bool = False,
    ) -> None:
        tune_malloc()  # flat memory over long videos (see engine.memory)
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            configure_cpu_threads()
        self.model = load_model(model, scale, self.device) if isinstance(model, str) else model
        self.model = self.model.eval().to(self.device)
        if self.model.window > 1 and self.model.channels != "y":
            raise UpscalerError("multi-frame models are luma models; an RGB window is not wired")
        self.name = model if isinstance(model, str) else type(model).__name__
        self.scale = scale
        self.tile = tile  # None: choose from memory; 0: never tile; N: N-pixel tiles
        self.dtype = self._dtype(precision)
        if self.dtype != torch.float32:
            self.model = self.model.to(self.dtype)
        # CPU: PyTorch eager, ONNX Runtime or OpenVINO, whichever is faster here
        # (engine.onnx_runtime, engine.openvino_runtime)
        on_cpu = self.device.type == "cpu" and self.dtype == torch.float32
        self._runtime_name = runtime if on_cpu else "torch"
        self.runtime = RuntimeSelector(self.model, self._runtime_name)
        self._chroma_nets: dict[int, RuntimeSelector] = {}  # by factor; chroma is fp32
        # torch.compile (GPU: fuses the small ops between convolutions; one graph per shape)
        self._compiled = torch.compile(self.model, dynamic=False) if compile else None
        self._fused: dict[tuple, FusedYuv | None] = {}  # by plane shapes (engine.fused)

    def fused(self, shapes: tuple[tuple[int, int], ...], batch: int, bits: int) -> FusedYuv | None:
        """The one-session path (uint8 planes in and out, `engine.fused`) for frames with
        planes of `shapes`, where it applies (8-bit, untiled, ONNX Runtime or OpenVINO); else
        None."""
        key = (shapes, bits)
        if key not in self._fused:
            whole = self._compiled is None and self._tile_for(batch, *shapes[0]) == 0
            usable = bits == 8 and whole
            self._fused[key] = (
                fused_session(self.model, self.runtime, shapes, self.scale) if usable else None
            )
        return self._fused[key]

    def _dtype(self, precision: str) -> torch.dtype:
        """auto: fp16 on CUDA unless the model says it breaks in fp16, else fp32."""
        if precision == "auto":
            cuda = self.device.type == "cuda"
            precision = "fp16" if cuda and getattr(self.model, "supports_half", True) else "fp32"
        if precision not in PRECISIONS:
            raise UpscalerError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
        return PRECISIONS[precision]

    @property
    def half(self) -> bool:
        return self.dtype != torch.float32

    @property
    def channels(self) -> str:
        return self.model.channels

    @property
    def radius(self) -> int:
        """Neighbouring frames the model reads on each side of a frame (0: single-frame)."""
        return self.model.window // 2

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

    def _to_device(self, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None or self.device.type == "cpu":
            return x
        # pinned: the copy overlaps with work already queued on the GPU
        return x.pin_memory().to(self.device, non_blocking=True)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        margin = self.model.receptive_field
        y = tiled_forward(self._run, x.to(self.dtype), self.scale, self._tile_for(n, h, w), margin)
        return y.float()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None:
            return self._compiled(x)
        return self.runtime.forward_for(tuple(x.shape))(x)

    def _chroma(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Chroma by MATLAB bicubic, through the faster runtime like the model."""
        factor = chroma_factor(x.shape, size)
        if factor is None:
            return upscale_chroma(x, size)
        if factor not in self._chroma_nets:
            net = BicubicChroma(factor).to(self.device)
            # fp32: chroma is the output itself (no residual to keep int8 or bf16 inside)
            fp32 = {"onnx-int8": "onnx", "openvino-bf16": "openvino"}
            runtime = fp32.get(self._runtime_name, self._runtime_name)
            self._chroma_nets[factor] = RuntimeSelector(net, runtime)
        shape = (x.shape[0] * x.shape[1], 1, *x.shape[-2:])
        return upscale_chroma(x, size, self._chroma_nets[factor].forward_for(shape))

    @torch.inference_mode()
    def upscale(
        self,
        planes: Planes,
        matrix: str = "bt601",
        full_range: bool = False,
        bits: int | None = None,
    ) -> Planes:
        """Upscale a batch. Luma models see Y only and chroma follows by MATLAB bicubic;
        RGB models see R'G'B' made with the video's own matrix and range. For a multi-frame
        model `planes.y` is each frame's window [N, 2r+1, H, W] (`engine.window`); a single
        Y plane is repeated to fill it.

        All of it runs on the model's device (on a GPU only frames cross the bus). With
        `bits`, the planes come back as integer code values (`colour.to_codes`), rounded
        there too: a quarter of the bytes of floats to copy back."""
        y_in, cb_in, cr_in = (self._to_device(p) for p in (planes.y, planes.cb, planes.cr))
        if y_in.shape[1] != self.model.window:  # a still or a lone frame: its own neighbours
            y_in = y_in.expand(-1, self.model.window, -1, -1)
        h, w = y_in.shape[-2:]
        out_h, out_w = h * self.scale, w * self.scale
        if cb_in is None or cr_in is None:
            y = self._forward(y_in) if self.channels == "y" else self._grey_rgb(y_in)
            return self._result([y], bits)
        ch, cw = cb_in.shape[-2:]
        chroma_size = (-(-out_h * ch // h), -(-out_w * cw // w))
        if self.channels == "y":
            y = self._forward(y_in)
            chroma = self._chroma(torch.cat([cb_in, cr_in], dim=1), chroma_size)
            return self._result([y, chroma[:, 0:1], chroma[:, 1:2]], bits)
        full = self._chroma(torch.cat([cb_in, cr_in], dim=1), (h, w))
        rgb = ycbcr_to_rgb(y_in, full[:, 0:1], full[:, 1:2], matrix, full_range)
        out = self._forward(rgb.clamp(0, 1))
        y, cb, cr = rgb_to_ycbcr(out, matrix, full_range)
        chroma = imresize(torch.cat([cb, cr], dim=1), size=chroma_size)  # a downscale
        return self._result([y, chroma[:, 0:1], chroma[:, 1:2]], bits)

    @staticmethod
    def _result(parts: list[torch.Tensor], bits: int | None) -> Planes:
        if bits is not None:  # every part is a fresh tensor of this call: scaled in place
            parts = [to_codes(p, bits, inplace=True) for p in parts]
        y, *chroma = (p.cpu() for p in parts)
        return Planes(y, *chroma) if chroma else Planes(y, None, None)

    def _grey_rgb(self, y: torch.Tensor) -> torch.Tensor:
        out = self._forward(y.expand(-1, 3, -1, -1))
        return out.mean(dim=1, keepdim=True)
