"""A frame counter drawn into the picture: which frame of the file a camera delivered, and when.

Shapes: ``stamp_index(rgb (height, width, 3) uint8, index) -> same``,
``read_index(rgb (h >= STAMP_HEIGHT_PX, w >= STAMP_WIDTH_PX, 3)) -> int | None``,
``decode_squares(levels (STAMP_BITS + 2,)) -> int | None`` (each square's grey level).

Chromium's fake camera plays a file at the file's frame rate only while it has the CPU to;
starved, it delivers every frame late but stamps it with the wall clock, so the pulse plays
slower than the page's clock says (a real camera cannot do that). A test that wants to
know the true rate of content against the page's clock reads this counter from the page.
The counter is ``STAMP_BITS`` black or white squares along the top-left corner (the
room's wall, far from the face), most significant bit first, plus a white square before
them and a black one after them that say the stamp is there. Squares are 8 px and
even-aligned, so 4:2:0 chroma subsampling and BT.601 conversion leave their luma clean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

STAMP_BITS = 12  # up to 4096 frames: 136 s at 30 fps
SQUARE_PX = 8
STAMP_HEIGHT_PX = SQUARE_PX
STAMP_WIDTH_PX = SQUARE_PX * (STAMP_BITS + 2)
_WHITE = 235  # limited-range extremes survive the Y4M round trip exactly
_BLACK = 16


def stamp_index(rgb: npt.NDArray[np.uint8], index: int) -> npt.NDArray[np.uint8]:
    """Draw ``index`` (0 <= index < 2**STAMP_BITS) into the frame's top-left corner, in place."""
    if not 0 <= index < 2**STAMP_BITS:
        raise ValueError(f"frame index {index} does not fit {STAMP_BITS} bits; shorten the video")
    bits = [1] + [(index >> (STAMP_BITS - 1 - i)) & 1 for i in range(STAMP_BITS)] + [0]
    for i, bit in enumerate(bits):
        rgb[:SQUARE_PX, i * SQUARE_PX : (i + 1) * SQUARE_PX] = _WHITE if bit else _BLACK
    return rgb


def read_index(rgb: npt.NDArray[np.number[Any]]) -> int | None:
    """The index stamped in the frame, or None when no stamp is there (the markers fail)."""
    centres = rgb[SQUARE_PX // 2, SQUARE_PX // 2 : STAMP_WIDTH_PX : SQUARE_PX].astype(np.float64)
    return decode_squares(centres.mean(axis=1).tolist())


def decode_squares(levels: list[float]) -> int | None:
    """The index from each square's grey level (0-255, marker squares included), or None."""
    if len(levels) != STAMP_BITS + 2:
        raise ValueError(f"expected {STAMP_BITS + 2} square levels, got {len(levels)}")
    bits = [level > (_WHITE + _BLACK) / 2 for level in levels]
    if not bits[0] or bits[-1]:
        return None
    return int(sum(int(b) << (STAMP_BITS - 1 - i) for i, b in enumerate(bits[1:-1])))
