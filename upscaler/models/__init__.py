"""Model zoo: architectures register themselves in `registry` when imported here."""

from upscaler.models import baselines, compact, esrgan, fast, multiframe  # noqa: F401  (they register)
from upscaler.models.base import SRModel
from upscaler.models.registry import available_models, load_model, register

register("bicubic", (2, 3, 4), description="MATLAB bicubic (a=-0.5), no weights")(
    lambda scale: baselines.Interpolation(scale, "cubic")
)
register("lanczos", (2, 3, 4), description="Lanczos-3 on luma, bicubic chroma, no weights")(
    lambda scale: baselines.Interpolation(scale, "lanczos3")
)

__all__ = ["SRModel", "available_models", "load_model", "register"]
