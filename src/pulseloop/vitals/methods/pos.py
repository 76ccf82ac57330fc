"""POS, the "plane orthogonal to skin" rPPG method.

Wang, W., den Brinker, A. C., Stuijk, S. & de Haan, G. (2017). "Algorithmic principles of
remote PPG." IEEE Transactions on Biomedical Engineering 64(7), 1479-1491.

Shapes: ``pos(rgb (n_samples, ..., 3), fs_hz) -> (n_samples, ...)``: any number of regions
between the time axis and the colour axis are processed at once. The input is uniformly
sampled mean skin colour; the output is a zero-mean pulse signal (not band-limited).

The comments follow the paper's Algorithm 1 (steps 5-8). Temporal normalisation divides
out the skin's DC colour and the light intensity; the projection onto the plane orthogonal
to the normalised skin tone removes intensity (specular and illumination) changes; the
alpha tuning combines the two projected signals so that the distortion left in one cancels
the other; short windows (1.6 s) are overlap-added so the tuning can follow the light.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float64]

WINDOW_S = 1.6  # the paper's l = 32 frames at 20 fps
_PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])  # Algorithm 1, step 6
_EPS = 1e-9


def pos(rgb: FloatArray, fs_hz: float) -> FloatArray:
    """Pulse signal from mean skin colour by POS (Wang et al. 2017, Algorithm 1)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    n = rgb.shape[0]
    window = max(round(WINDOW_S * fs_hz), 2)
    if n < window:
        raise ValueError(f"POS needs at least {window} samples at {fs_hz} Hz, got {n}")
    # windows: (n_windows, ..., 3, window) -> move the window axis next to time.
    windows = np.moveaxis(sliding_window_view(rgb, window, axis=0), -1, 1)
    # Step 5, temporal normalisation: C_n = diag(mean(C))^-1 C over each window.
    normalised = windows / (windows.mean(axis=1, keepdims=True) + _EPS)
    # Step 6, projection: S = [[0, 1, -1], [-2, 1, 1]] C_n.
    s1 = normalised @ _PROJECTION[0]
    s2 = normalised @ _PROJECTION[1]
    # Step 7, tuning: h = S1 + (sigma(S1) / sigma(S2)) S2.
    alpha = s1.std(axis=1, keepdims=True) / (s2.std(axis=1, keepdims=True) + _EPS)
    h = s1 + alpha * s2
    h -= h.mean(axis=1, keepdims=True)
    # Step 8, overlap-adding: H(m..n) += h - mean(h), one shifted add per window offset.
    out = np.zeros((n, *rgb.shape[1:-1]), dtype=np.float64)
    n_windows = h.shape[0]
    for offset in range(window):
        out[offset : offset + n_windows] += h[:, offset]
    return out
