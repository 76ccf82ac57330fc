"""Skin regions inside a face box, and their mean colours.

Shapes: ``region_boxes(face (4,)) -> (4 regions, 4)`` as ``[x0, y0, x1, y1]`` pixel bounds;
``region_means(frame (h, w, 3) uint8, face (4,)) -> (4 regions, 3)`` mean RGB in 0-255.

The regions are fixed fractions of the face box ``[x, y, w, h]`` as an OpenCV Haar frontal
face detector draws it (brow line near the top, box bottom under the lips). The forehead
band sits just under the hairline, the cheek patches beside the nose, below the eyes. These
are the three areas with the strongest, least motion-prone pulse and no facial hair, eyes or
mouth. The fourth, the whole face box, mixes in eyes, brows and mouth, but it averages ten
times more pixels: on compressed video it is the only region whose pulse survives (measured
on VP8 at 2.5 Mbit/s: the right rate at -0.4 dB where each small region was below -2 dB),
and on raw video it gives the best single SNR. A browser page that uses another detector
should map its box to the same fractions (see ``docs/vitals.md``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.trace import REGION_NAMES

# (x0, y0, x1, y1) as fractions of the face box width and height, in REGION_NAMES order.
REGION_FRACTIONS: dict[str, tuple[float, float, float, float]] = {
    "forehead": (0.32, 0.12, 0.68, 0.25),
    "left_cheek": (0.15, 0.55, 0.38, 0.75),
    "right_cheek": (0.62, 0.55, 0.85, 0.75),
    "full_face": (0.10, 0.05, 0.90, 0.95),
}
_FRACTIONS = np.array([REGION_FRACTIONS[name] for name in REGION_NAMES], dtype=np.float64)
MIN_REGION_PX = 4  # a region narrower than this carries no usable average


def region_boxes(face: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Pixel bounds ``(3, 4)`` of the skin regions of face box ``[x, y, w, h]``."""
    x, y, w, h = np.asarray(face, dtype=np.float64)
    boxes = np.empty((len(REGION_NAMES), 4), dtype=np.float64)
    boxes[:, 0] = x + _FRACTIONS[:, 0] * w
    boxes[:, 1] = y + _FRACTIONS[:, 1] * h
    boxes[:, 2] = x + _FRACTIONS[:, 2] * w
    boxes[:, 3] = y + _FRACTIONS[:, 3] * h
    return boxes


def pixel_bounds(
    face: npt.ArrayLike, width: int, height: int, step: int = 1
) -> npt.NDArray[np.int64] | npt.NDArray[np.float64]:
    """Pixel bounds ``(4 regions, 4)`` ``[x0, y0, x1, y1]`` the means are taken over.

    Each edge is rounded to the nearest pixel (``Math.round`` on the scan page), then down to
    a multiple of ``step``, and clipped to the frame; ``step=0`` keeps sub-pixel edges (the
    video path weighs the pixels an edge cuts, :func:`pulseloop.vitals.colour.box_mean`).
    :mod:`pulseloop.vitals.motion` rebuilds these from the trace's boxes: the 1-pixel jumps
    of the edges are part of the motion artefact it removes.
    """
    if step == 0:  # sub-pixel edges (the video path): only clipped
        bounds = region_boxes(face)
        bounds[:, 0::2] = np.clip(bounds[:, 0::2], 0, width)
        bounds[:, 1::2] = np.clip(bounds[:, 1::2], 0, height)
        return bounds
    bounds = np.floor(region_boxes(face) + 0.5).astype(np.int64)
    bounds -= bounds % step
    bounds[:, 0::2] = np.clip(bounds[:, 0::2], 0, width - width % step)
    bounds[:, 1::2] = np.clip(bounds[:, 1::2], 0, height - height % step)
    return bounds


def region_means(frame: npt.NDArray[np.uint8], face: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean RGB ``(4 regions, 3)`` of the skin regions; NaN rows for regions off-frame."""
    height, width = frame.shape[:2]
    out = np.full((len(REGION_NAMES), 3), np.nan, dtype=np.float64)
    for k, (x0, y0, x1, y1) in enumerate(pixel_bounds(face, width, height)):
        if x1 - x0 < MIN_REGION_PX or y1 - y0 < MIN_REGION_PX:
            continue
        patch = frame[y0:y1, x0:x1]
        out[k] = patch.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    return out
