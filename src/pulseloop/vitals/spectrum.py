"""Spectra, band-pass filters, sub-bin peak location and signal-to-noise ratio.

Shapes: ``power_spectrum(x (n,), fs_hz) -> Spectrum`` with ``freq_hz (m,)`` and
``power (m,)``; ``snr_db(spectrum, f0_hz) -> float``.

The SNR is de Haan & Jeanne's (2013, IEEE TBME 60(10)) definition: the energy within a
narrow window around the pulse frequency and its first harmonic, over the energy in the
rest of the pulse band, in dB. It is the quantity the quality gate and the method fusion
trust, because noise-only inputs spread their energy over the band while a pulse packs it
into two narrow peaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

FloatArray = npt.NDArray[np.float64]

PULSE_BAND_HZ = (0.65, 4.0)  # the band the SNR is measured over (39-240 bpm)
FUNDAMENTAL_HALF_WIDTH_HZ = 0.1
HARMONIC_HALF_WIDTH_HZ = 0.2
_MIN_FFT = 4096


@dataclass(frozen=True, slots=True, eq=False)
class Spectrum:
    """A one-sided power spectrum (arbitrary units)."""

    freq_hz: FloatArray
    power: FloatArray


def bandpass(
    x: FloatArray, fs_hz: float, band_hz: tuple[float, float], order: int = 3
) -> FloatArray:
    """Zero-phase Butterworth band-pass along axis 0."""
    sos = sps.butter(order, band_hz, btype="bandpass", fs=fs_hz, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), x.shape[0] - 1)
    return np.asarray(sps.sosfiltfilt(sos, x, axis=0, padlen=padlen), dtype=np.float64)


def power_spectrum(x: FloatArray, fs_hz: float, min_fft: int = _MIN_FFT) -> Spectrum:
    """Hann-windowed periodogram, zero-padded (at least 8x) for a fine frequency grid."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n_fft = max(min_fft, 1 << int(np.ceil(np.log2(8 * x.size))))
    spec = np.fft.rfft(x * np.hanning(x.size), n=n_fft)
    freq_hz = np.asarray(np.fft.rfftfreq(n_fft, 1.0 / fs_hz), dtype=np.float64)
    return Spectrum(freq_hz, np.asarray(np.abs(spec) ** 2, dtype=np.float64))


def peak_hz(spectrum: Spectrum, band_hz: tuple[float, float]) -> float:
    """The strongest frequency in ``band_hz``, refined between bins.

    Parabolic interpolation through the log-power of the peak bin and its neighbours (exact
    for a Gaussian-shaped peak, which a Hann-windowed sinusoid closely is).
    """
    f, p = spectrum.freq_hz, spectrum.power
    inside = np.nonzero((f >= band_hz[0]) & (f <= band_hz[1]))[0]
    k = int(inside[np.argmax(p[inside])])
    if k <= 0 or k >= p.size - 1:
        return float(f[k])
    a, b, c = np.log(p[k - 1 : k + 2] + 1e-30)
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(f[k] + np.clip(shift, -0.5, 0.5) * (f[1] - f[0]))


def snr_db(spectrum: Spectrum, f0_hz: float) -> float:
    """Pulse energy (fundamental and first harmonic) over the rest of the pulse band, dB."""
    f, p = spectrum.freq_hz, spectrum.power
    band = (f >= PULSE_BAND_HZ[0]) & (f <= PULSE_BAND_HZ[1])
    signal_mask = (np.abs(f - f0_hz) <= FUNDAMENTAL_HALF_WIDTH_HZ) | (
        np.abs(f - 2 * f0_hz) <= HARMONIC_HALF_WIDTH_HZ
    )
    signal_power = float(p[band & signal_mask].sum())
    noise_power = float(p[band & ~signal_mask].sum())
    if signal_power <= 0:
        return -60.0
    return float(10 * np.log10(signal_power / max(noise_power, 1e-30)))


def band_power_share(
    spectrum: Spectrum, f0_hz: float, half_width_hz: float, band_hz: tuple[float, float]
) -> float:
    """Share of the power in ``band_hz`` that lies within ``half_width_hz`` of ``f0_hz``."""
    f, p = spectrum.freq_hz, spectrum.power
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    total = float(p[band].sum())
    near = float(p[band & (np.abs(f - f0_hz) <= half_width_hz)].sum())
    return near / total if total > 0 else 0.0
