"""Put a trace on a uniform time grid, using each frame's real timestamp.

Shapes: ``resample(trace) -> Uniform`` with ``t_s (n,)``, ``rgb (n, 4 regions, 3)``,
``face (n, 4)``, ``bounds (n, 4 regions, 4)`` and ``valid (n,)`` on a grid at
``ANALYSIS_FS_HZ``. ``bounds`` are the integer pixel edges each region's mean was taken
over (rebuilt from the face boxes, :func:`pulseloop.vitals.regions.pixel_bounds`);
``detection (n, 4)`` the detector's raw boxes interpolated between the frames it looked at,
and ``track (n, 4)`` the first face box moved by the page's per-frame face ``shift`` (each
None when the trace has none: version 1, or a video).

Cameras and browsers drop and delay frames (gaps of ~100 ms are common), so a trace is
never assumed to be constant-rate: every channel is linearly interpolated at the grid times
from the frames that had a face. Grid points inside a gap longer than ``MAX_GAP_S`` are
marked invalid; the quality gate counts them as face-lost time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.errors import TraceInvalid
from pulseloop.vitals.regions import pixel_bounds
from pulseloop.vitals.trace import MAX_DURATION_S, Trace

FloatArray = npt.NDArray[np.float64]
ANALYSIS_FS_HZ = 30.0
MAX_GAP_S = 0.5
MIN_DETECTIONS_PER_S = 2.0  # detector boxes this sparse cannot show a 0.6-3.3 Hz rhythm


@dataclass(frozen=True, slots=True, eq=False)
class Uniform:
    """A trace resampled on a uniform grid."""

    t_s: FloatArray
    rgb: FloatArray
    face: FloatArray
    valid: npt.NDArray[np.bool_]
    fs_hz: float
    bounds: FloatArray
    detection: FloatArray | None = None
    track: FloatArray | None = None
    # The regions' exact (sub-pixel) edges from the same boxes: ``bounds - exact`` is what
    # rounding the edges to whole pixels added, a sampling artefact, not head motion.
    exact: FloatArray | None = None


def frame_rate_hz(t_ms: FloatArray) -> float:
    """The delivered frame rate: frames per second over the trace's span."""
    span_s = (float(t_ms[-1]) - float(t_ms[0])) / 1000.0
    return (t_ms.shape[0] - 1) / span_s if span_s > 0 else 0.0


def resample(trace: Trace, fs_hz: float = ANALYSIS_FS_HZ) -> Uniform:
    """Interpolate the face frames of ``trace`` onto a uniform grid at ``fs_hz``."""
    found = trace.face_found
    t_s = trace.t_ms / 1000.0
    if int(found.sum()) < 2:
        empty = np.empty((0,), dtype=np.float64)
        return Uniform(
            empty,
            np.empty((0, *trace.rgb.shape[1:])),
            np.empty((0, 4)),
            np.empty((0,), dtype=np.bool_),
            fs_hz,
            np.empty((0, *trace.rgb.shape[1:-1], 4)),
        )
    t_face = t_s[found]
    span_s = float(t_s[-1] - t_s[0])
    if not 0.0 <= span_s <= MAX_DURATION_S:
        # parse_trace refuses these; a Trace built in code is checked here, before the
        # grid (as long as the span) is allocated.
        raise TraceInvalid("frames", f"span {span_s:g} s, expected at most {MAX_DURATION_S:g} s")
    grid = np.arange(t_face[0], t_face[-1] + 1e-9, 1.0 / fs_hz)
    rgb = np.empty((grid.size, *trace.rgb.shape[1:]), dtype=np.float64)
    for k in range(trace.rgb.shape[1]):
        for c in range(3):
            rgb[:, k, c] = np.interp(grid, t_face, trace.rgb[found, k, c])
    face = np.stack([np.interp(grid, t_face, trace.face[found, c]) for c in range(4)], axis=1)
    step = 0 if trace.source == "video" else 1  # sub-pixel edges in the video path
    size = (trace.frame_width, trace.frame_height)
    edges = np.stack([pixel_bounds(box, *size, step) for box in trace.face[found]])
    exact_edges = np.stack([pixel_bounds(box, *size, 0) for box in trace.face[found]])
    bounds = np.empty((grid.size, *edges.shape[1:]), dtype=np.float64)
    exact = np.empty_like(bounds)
    for k in range(edges.shape[1]):
        for c in range(4):
            bounds[:, k, c] = np.interp(grid, t_face, edges[:, k, c].astype(np.float64))
            exact[:, k, c] = np.interp(grid, t_face, exact_edges[:, k, c])
    # A grid point is valid when the face frames around it are close in time.
    right = np.clip(np.searchsorted(t_face, grid, side="left"), 1, t_face.size - 1)
    gap_s = t_face[right] - t_face[right - 1]
    valid = np.asarray(gap_s <= MAX_GAP_S, dtype=np.bool_)
    return Uniform(
        grid - grid[0],
        rgb,
        face,
        valid,
        fs_hz,
        bounds,
        _detections(trace, grid),
        _track(trace, grid),
        exact,
    )


def _track(trace: Trace, grid: FloatArray) -> FloatArray | None:
    """The face's own position on the grid: the first box, moved by each frame's shift."""
    if trace.shift is None:
        return None
    seen = np.isfinite(trace.shift).all(axis=1) & trace.face_found
    if int(seen.sum()) < 2:
        return None
    t_s = trace.t_ms[seen] / 1000.0
    first = trace.face[seen][0]
    moved = np.tile(first, (t_s.size, 1))
    moved[:, :2] += trace.shift[seen]
    return np.stack([np.interp(grid, t_s, moved[:, c]) for c in range(4)], axis=1)


def _detections(trace: Trace, grid: FloatArray) -> FloatArray | None:
    """The raw detector boxes on the grid, or None when there are too few to follow.

    Detectors run every few frames (the scan page: ~5-10 times a second), so the boxes are
    linearly interpolated between detections; outside the detected span the nearest box
    holds. Fewer than ``MIN_DETECTIONS_PER_S`` on average carries no motion rhythm.
    """
    if trace.detection is None:
        return None
    seen = np.isfinite(trace.detection).all(axis=1)
    span_s = float(grid[-1] - grid[0]) if grid.size else 0.0
    if int(seen.sum()) < max(2.0, MIN_DETECTIONS_PER_S * span_s):
        return None
    t_s = trace.t_ms[seen] / 1000.0
    boxes = trace.detection[seen]
    return np.stack([np.interp(grid, t_s, boxes[:, c]) for c in range(4)], axis=1)
