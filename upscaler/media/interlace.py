"""Is a video interlaced, or telecined film? The stream's field order and the frames' flags
say what the file claims; the pictures say what it is. Flags lie both ways (DV and broadcast
H.264 flag progressive film as interlaced; some capture tools flag nothing), so the decision
rests on combing measured in sample frames. Telecined film (3:2 pulldown: 4 film frames over
5 video frames, two of which mix fields of two film frames) combs too, but only on two
neighbouring frames of each 5, and those weave clean when a field is re-paired with a
neighbouring frame's: fields of interlaced video are each from their own moment and never do.
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
#: The 3:2 pulldown cycle, in video frames.
PULLDOWN_CYCLE = 5


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


def repaired_ratio(luma: np.ndarray, neighbour: np.ndarray) -> float:
    """The comb ratio of `luma` with one field taken from `neighbour` instead (the better of
    the two fields): low when the two frames share a film frame across their fields."""
    ratios = []
    for parity in (0, 1):
        woven = luma.copy()
        woven[parity::2] = neighbour[parity::2]
        ratios.append(comb_ratio(woven))
    return min(ratios)


def looks_telecined(ratios: list[float], repaired: list[float]) -> bool:
    """3:2 pulldown, from the sample frames' comb ratios and their best re-paired ratios
    (`repaired_ratio` with either neighbour): at least two frames combed, every combed frame
    clean re-paired, and the combed ones on at most two neighbouring places of the cycle."""
    combed = [i for i, r in enumerate(ratios) if r > COMB_RATIO]
    if len(combed) < 2 or any(repaired[i] > COMB_RATIO for i in combed):
        return False
    places = sorted({i % PULLDOWN_CYCLE for i in combed})
    return len(places) == 1 or (
        len(places) == 2 and (places[1] - places[0]) in (1, PULLDOWN_CYCLE - 1)
    )


def top_field_first(field_order: str) -> bool | None:
    """True / False where the stream's field order (a FIELD_ORDERS name) says which field
    comes first, else None."""
    return None if field_order in ("unknown", "progressive") else field_order in ("tt", "tb")
