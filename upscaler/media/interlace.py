"""Is a video interlaced? The stream's field order and the frames' flags say what the file
claims; the pictures say what it is. Flags lie both ways (DV and broadcast H.264 flag
progressive film as interlaced; some capture tools flag nothing), so the decision rests on
combing measured in sample frames.
"""

from __future__ import annotations

import numpy as np

#: FFmpeg AVFieldOrder -> name (t: top field, b: bottom; coded order then display order).
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
#: A frame is combed when lines of opposite fields differ this much more than lines of the
#: same field (progressive pictures: well under 1, since nearer lines are more alike).
COMB_RATIO = 1.15
#: The video is interlaced when at least this share of the sample frames is combed.
COMBED_SHARE = 0.3


def comb_ratio(luma: np.ndarray) -> float:
    """Mean difference between neighbouring lines (opposite fields) over the mean difference
    between lines two apart (same field). Moving interlaced content makes the first large."""
    y = luma.astype(np.float32)
    if y.shape[0] < 4:
        return 0.0
    across = np.abs(y[1:-1] - (y[:-2] + y[2:]) / 2).mean()
    within = np.abs(y[2:] - y[:-2]).mean() / 2
    return float(across / max(within, 1e-3))


def looks_interlaced(ratios: list[float]) -> bool:
    """The verdict over the sample frames' comb ratios."""
    if not ratios:
        return False
    combed = sum(r > COMB_RATIO for r in ratios)
    return combed >= max(1, COMBED_SHARE * len(ratios))


def top_field_first(field_order: str) -> bool | None:
    """True / False where the stream's field order (a FIELD_ORDERS name) says which field
    comes first, else None."""
    return None if field_order in ("unknown", "progressive") else field_order in ("tt", "tb")
