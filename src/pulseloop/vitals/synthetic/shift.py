"""The scan page's face-shift tracker, in Python: the trace ``shift`` a page would send.

Shapes: ``ShiftTracker.measure(green (h, w), x0, y0) -> (dx, dy) or None``, one call per frame,
``green`` the full-face rectangle's green channel at ``(x0, y0)`` in the frame.

A port of ``static/scan/face-shift.js`` (the same profiles, search and refinement), so the
synthetic browser traces carry the page's own measurement of the face's motion, with its
errors, rather than the true offsets: the face's column and row profiles of green, each
divided by its mean (the pulse brightens the whole face and must not move them), matched
in frame coordinates against the first frame's to a fraction of a pixel.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SEARCH_PX = 4  # per frame, around the last shift (face-shift.js)
WIDE_PX = 24  # when the best match is at the edge, look this far once


def _profiles(green: npt.NDArray[np.generic]) -> tuple[FloatArray, FloatArray]:
    """Column and row sums of ``green``, each divided by its mean."""
    pixels = np.asarray(green, dtype=np.float64)
    cols = pixels.sum(axis=0)
    rows = pixels.sum(axis=1)
    return cols / (float(cols.mean()) or 1.0), rows / (float(rows.mean()) or 1.0)


def _mismatch(cur: FloatArray, cur0: int, ref: FloatArray, ref0: int, s: int) -> float:
    """Mean squared difference of ``cur`` (from ``cur0``) against ``ref`` moved by ``s``."""
    start = max(cur0, ref0 + s)
    stop = min(cur0 + cur.size, ref0 + s + ref.size)
    if stop - start < cur.size / 2:
        return math.inf
    d = cur[start - cur0 : stop - cur0] - ref[start - s - ref0 : stop - s - ref0]
    return float(np.mean(d * d))


def _best_shift(
    cur: FloatArray, cur0: int, ref: FloatArray, ref0: int, around: float, reach: int
) -> float | None:
    """The sub-pixel shift of ``cur`` against ``ref``, searched within ``reach`` of ``around``."""
    centre = math.floor(around + 0.5)  # Math.round
    costs = {
        s: _mismatch(cur, cur0, ref, ref0, s) for s in range(centre - reach, centre + reach + 1)
    }
    best = min(costs, key=lambda s: (costs[s], s))
    if not math.isfinite(costs[best]):
        return None
    if abs(best - centre) == reach and reach < WIDE_PX:
        return _best_shift(cur, cur0, ref, ref0, around, WIDE_PX)
    left = costs.get(best - 1, math.inf)
    right = costs.get(best + 1, math.inf)
    curve = left - 2 * costs[best] + right
    if not math.isfinite(curve) or curve <= 0:
        return float(best)
    return best + max(-0.5, min(0.5, 0.5 * (left - right) / curve))


class ShiftTracker:
    """One capture's tracker: the face's shift since the first frame it measured."""

    def __init__(self) -> None:
        self._reference: tuple[FloatArray, FloatArray, int, int] | None = None
        self._last = (0.0, 0.0)

    def measure(
        self, green: npt.NDArray[np.generic], x0: int, y0: int
    ) -> tuple[float, float] | None:
        """``(dx, dy)`` px since the first crop, or None when no match overlaps enough."""
        cols, rows = _profiles(green)
        if self._reference is None:
            self._reference = (cols, rows, x0, y0)
            self._last = (0.0, 0.0)
            return (0.0, 0.0)
        ref_cols, ref_rows, ref_x0, ref_y0 = self._reference
        dx = _best_shift(cols, x0, ref_cols, ref_x0, self._last[0], SEARCH_PX)
        dy = _best_shift(rows, y0, ref_rows, ref_y0, self._last[1], SEARCH_PX)
        if dx is None or dy is None:
            return None
        self._last = (dx, dy)
        return self._last
