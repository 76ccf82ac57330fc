"""CHROM, the chrominance-based rPPG method.

de Haan, G. & Jeanne, V. (2013). "Robust pulse rate from chrominance-based rPPG." IEEE
Transactions on Biomedical Engineering 60(10), 2878-2886.

Shapes: ``chrom(rgb (n_samples, ..., 3), fs_hz) -> (n_samples, ...)``: regions between the
time and colour axes are processed at once. The output is a band-limited (0.65-4 Hz),
zero-mean pulse signal.

The method assumes a standardised skin tone: after normalising each colour channel by its
temporal mean, two chrominance signals ``X = 3R - 2G`` and ``Y = 1.5R + G - 1.5B`` are
orthogonal to the specular (white) reflection of that skin tone, and both still carry the
pulse. Their band-passed versions are combined as ``S = X_f - alpha Y_f`` with
``alpha = sigma(X_f) / sigma(Y_f)``, which cancels the motion distortion they share. As in
the paper, alpha is tuned per window (here 1.6 s, Hann-weighted, 50 % overlap-add) so it
follows changes in light and pose.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

FloatArray = npt.NDArray[np.float64]

WINDOW_S = 1.6
BAND_HZ = (0.65, 4.0)
_EPS = 1e-9


def moving_mean(x: FloatArray, width: int) -> FloatArray:
    """Centred moving mean along axis 0 (edges use the samples that exist)."""
    kernel = np.ones(width) / width
    ones = np.ones(x.shape[0])
    norm = np.convolve(ones, kernel, mode="same")
    filtered = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, x)
    return np.asarray(filtered / norm.reshape(-1, *([1] * (x.ndim - 1))), dtype=np.float64)


def chrom(rgb: FloatArray, fs_hz: float) -> FloatArray:
    """Pulse signal from mean skin colour by CHROM (de Haan & Jeanne 2013)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    n = rgb.shape[0]
    window = max(round(WINDOW_S * fs_hz), 4)
    window += window % 2  # even, so half-overlapping Hann windows sum to a constant
    if n < 2 * window:
        raise ValueError(f"CHROM needs at least {2 * window} samples at {fs_hz} Hz, got {n}")
    # Normalise each channel by its local temporal mean (the skin's DC colour).
    normalised = rgb / (moving_mean(rgb, window) + _EPS)
    r, g, b = normalised[..., 0], normalised[..., 1], normalised[..., 2]
    # The two chrominance signals of the standardised skin tone.
    x = 3.0 * r - 2.0 * g
    y = 1.5 * r + g - 1.5 * b
    sos = sps.butter(3, BAND_HZ, btype="bandpass", fs=fs_hz, output="sos")
    x_f = sps.sosfiltfilt(sos, x, axis=0)
    y_f = sps.sosfiltfilt(sos, y, axis=0)
    hann = np.hanning(window + 2)[1:-1].reshape(-1, *([1] * (x.ndim - 1)))
    out = np.zeros_like(x_f)
    step = window // 2
    for start in range(0, n - window + 1, step):
        xs, ys = x_f[start : start + window], y_f[start : start + window]
        # S = X_f - alpha Y_f with alpha = sigma(X_f) / sigma(Y_f), per window.
        alpha = xs.std(axis=0) / (ys.std(axis=0) + _EPS)
        s = xs - alpha * ys
        out[start : start + window] += hann * (s - s.mean(axis=0))
    return np.asarray(out, dtype=np.float64)
