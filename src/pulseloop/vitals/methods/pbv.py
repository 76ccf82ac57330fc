"""PBV, the blood-volume-pulse-signature rPPG method, over a range of skin tones.

de Haan, G. & van Leest, A. (2014). "Improved motion robustness of remote-PPG by using the
blood volume pulse signature." Physiological Measurement 35(9), 1913-1926.

Shapes: ``pbv(rgb (n_samples, ..., 3), fs_hz, signature (3,)) -> (n_samples, ...)``; the
output is a band-limited (0.65-4 Hz), zero-mean pulse signal. ``SIGNATURES`` holds the
signatures the fusion tries, light to very dark skin.

Why this method next to POS and CHROM: they fix the colour combination in advance (two
projections of the channels, each divided by its own mean), which is right for light skin.
Melanin absorbs blue and green far more than red, so on very dark skin the blue channel is
dim and carries almost no pulse, yet POS and CHROM weight it like the others and its
relative noise, several times larger, swamps the pulse (measured on synthetic Fitzpatrick
VI scans: POS -0.4 dB where green alone gave 7 dB). PBV instead asks for the combination
``w`` that has unit gain along the pulse's colour direction ``p`` and the least output
power (eq. 12: ``w = k p Q^-1`` with ``Q`` the covariance of the normalised channels), the
minimum-variance solution: noisy or motion-hit channels get small weights automatically.

The signature depends on the skin. Rather than one fixed ``p``, the light-skin signature
of the paper is attenuated as melanin would (double pass through the epidermis,
absorption ~ lambda^-3.3: relative optical depths 1 : 1.4 : 2.4 for R, G, B, Jacques 2013,
Phys. Med. Biol. 58(11)) at a few melanin depths; each gives a candidate that the fusion
scores by SNR like any other. ``Q`` is estimated per window (overlap-added, Hann) so the
weights follow changes in light.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

from pulseloop.vitals.methods.chrom import moving_mean

FloatArray = npt.NDArray[np.float64]

WINDOW_S = 6.4
BAND_HZ = (0.65, 4.0)
_LIGHT = np.array([0.33, 0.77, 0.53])  # de Haan & van Leest 2014, light skin
_MELANIN_DEPTH = np.array([1.0, 1.4, 2.4])  # relative optical depth of melanin in R, G, B
MELANIN_LEVELS = (0.0, 1.0, 2.0)  # light, medium, very dark skin


def signature(melanin: float) -> FloatArray:
    """``(3,)`` unit-norm pulse signature of skin with this much melanin (0 = light)."""
    p = _LIGHT * np.exp(-melanin * _MELANIN_DEPTH)
    return np.asarray(p / np.linalg.norm(p), dtype=np.float64)


SIGNATURES: dict[str, FloatArray] = {f"pbv{m:g}": signature(m) for m in MELANIN_LEVELS}


def pbv(rgb: FloatArray, fs_hz: float, pulse_signature: FloatArray) -> FloatArray:
    """Pulse signal from mean skin colour by PBV (de Haan & van Leest 2014)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    n = rgb.shape[0]
    window = max(round(WINDOW_S * fs_hz), 8)
    window += window % 2
    window = min(window, n - n % 2)
    if window < 8:
        raise ValueError(f"PBV needs at least 8 samples at {fs_hz} Hz, got {n}")
    # Normalised, band-passed channels C_n (eq. 3): the pulse is a relative change.
    normalised = rgb / (moving_mean(rgb, max(round(1.6 * fs_hz), 4)) + 1e-9) - 1.0
    sos = sps.butter(3, BAND_HZ, btype="bandpass", fs=fs_hz, output="sos")
    c = np.asarray(sps.sosfiltfilt(sos, normalised, axis=0), dtype=np.float64)
    # (n, ..., 3) -> (..., n, 3) so the windows are plain matrix products.
    c = np.moveaxis(c, 0, -2)
    out = np.zeros(c.shape[:-1], dtype=np.float64)
    hann = np.hanning(window + 2)[1:-1]
    step = window // 2
    starts = list(range(0, n - window + 1, step))
    if starts[-1] != n - window:
        starts.append(n - window)
    weight = np.zeros(n)
    p = np.asarray(pulse_signature, dtype=np.float64)
    for start in starts:
        part = c[..., start : start + window, :]
        q = np.einsum("...ti,...tj->...ij", part, part) / window
        q += np.eye(3) * (1e-6 * np.trace(q, axis1=-2, axis2=-1)[..., None, None] + 1e-18)
        # w = k p Q^-1 (eq. 12), k chosen so that the pulse direction has unit gain.
        w = np.linalg.solve(q, np.broadcast_to(p, q.shape[:-1])[..., None])[..., 0]
        w /= np.einsum("...i,i->...", w, p)[..., None]
        s = np.einsum("...ti,...i->...t", part, w)
        out[..., start : start + window] += hann * (s - s.mean(axis=-1, keepdims=True))
        weight[start : start + window] += hann
    out /= np.maximum(weight, 1e-9)
    return np.asarray(np.moveaxis(out, -1, 0), dtype=np.float64)
