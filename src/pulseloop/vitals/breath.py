"""Breathing rate (6-40 /min) from the way breathing modulates the pulse.

Shapes: ``respiratory_rate(rgb (n, 4 regions, 3), fs_hz, beats, alpha) -> Breathing``.

Breathing modulates the PPG three ways (Charlton et al. 2016, Physiol. Meas. 37(4); Karlen
et al. 2013, IEEE TBME 60(7) "Multiparameter respiratory rate estimation from the
photoplethysmogram"): the pulse amplitude (RIAV), the baseline blood volume (RIIV) and the
beat-to-beat interval through respiratory sinus arrhythmia (RIFV). Each is turned into a
series sampled at 4 Hz, its spectrum is taken over the breathing band, and the spectra are
averaged with weights equal to how peaked each one is (a modulation that is not there gives
a flat spectrum and little weight). Karlen's "smart fusion" idea is kept: unless at least
two of the three modulations agree with the fused rate, or one is an unmistakable rhythm
(over ``SOLO_PEAK_SHARE`` of its band power in one peak), no rate is reported.

RIIV needs the slow colour change, which POS's 1.6 s windows remove, so it is taken from the
whole-scan-normalised colour projected with POS's plane and the pulse band's alpha.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.heart import Beats
from pulseloop.vitals.spectrum import Spectrum, band_power_share, bandpass, peak_hz, power_spectrum

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)

BREATH_BAND_HZ = (0.1, 40.0 / 60.0)  # 6-40 breaths per minute
SERIES_FS_HZ = 4.0
MIN_DURATION_S = 20.0
MAX_SPREAD_BPM = 2.0  # an estimate this close to the fused rate agrees with it
MIN_AGREEING = 2
SOLO_PEAK_SHARE = 0.8  # ... unless one modulation alone is this clean a rhythm
MIN_PEAK_SHARE = 0.25
_PEAK_HALF_WIDTH_HZ = 0.04
EDGE_HZ = 0.01


@dataclass(frozen=True, slots=True)
class Breathing:
    """Breathing rate per minute, or the reason it is withheld."""

    rate_bpm: float | None
    reason: str | None


def _beat_series(times_s: FloatArray, values: FloatArray, t_end_s: float) -> FloatArray | None:
    if times_s.size < 6:
        return None
    grid = np.arange(times_s[0], min(times_s[-1], t_end_s), 1.0 / SERIES_FS_HZ)
    if grid.size < 16:
        return None
    return np.asarray(np.interp(grid, times_s, values), dtype=np.float64)


def _riiv(rgb: FloatArray, fs_hz: float) -> FloatArray:
    """Slow pulse-direction colour change: whole-scan normalisation, POS plane, band-pass."""
    normalised = (rgb / rgb.mean(axis=0, keepdims=True)).mean(axis=1)  # (n, 3)
    s1 = normalised[:, 1] - normalised[:, 2]
    s2 = -2.0 * normalised[:, 0] + normalised[:, 1] + normalised[:, 2]
    s1_band = bandpass(s1, fs_hz, (0.65, 4.0))
    s2_band = bandpass(s2, fs_hz, (0.65, 4.0))
    alpha = float(s1_band.std() / (s2_band.std() + 1e-12))
    slow = bandpass(s1 + alpha * s2, fs_hz, (0.07, 0.9), order=2)
    t_s = np.arange(slow.size) / fs_hz
    grid = np.arange(0.0, t_s[-1], 1.0 / SERIES_FS_HZ)
    return np.asarray(np.interp(grid, t_s, slow), dtype=np.float64)


def respiratory_rate(rgb: FloatArray, fs_hz: float, found: Beats, duration_s: float) -> Breathing:
    """Fuse RIAV, RIFV and RIIV spectra into one breathing rate (per minute)."""
    if duration_s < MIN_DURATION_S:
        return Breathing(None, f"scan shorter than {MIN_DURATION_S:g} s")
    good = np.concatenate(([True], found.ibi_ok))
    times, amps = found.times_s[good], found.amplitudes[good]
    series: dict[str, FloatArray | None] = {
        "amplitude": _beat_series(times, amps, duration_s),
        "frequency": _beat_series(
            found.times_s[1:][found.ibi_ok], found.ibi_ms[found.ibi_ok], duration_s
        ),
        "baseline": _riiv(rgb, fs_hz),
    }
    fused: FloatArray | None = None
    freq_hz: FloatArray | None = None
    estimates: list[float] = []
    weights: list[float] = []
    for values in series.values():
        if values is None or values.size < 16:
            continue
        spectrum = power_spectrum(values - values.mean(), SERIES_FS_HZ, min_fft=2048)
        band = (spectrum.freq_hz >= BREATH_BAND_HZ[0]) & (spectrum.freq_hz <= BREATH_BAND_HZ[1])
        f0 = peak_hz(spectrum, BREATH_BAND_HZ)
        share = band_power_share(spectrum, f0, _PEAK_HALF_WIDTH_HZ, BREATH_BAND_HZ)
        norm = spectrum.power * band / max(float(spectrum.power[band].sum()), 1e-30)
        fused = share * norm if fused is None else fused + share * norm
        freq_hz = spectrum.freq_hz
        estimates.append(f0 * 60.0)
        weights.append(share)
    if fused is None or freq_hz is None:
        return Breathing(None, "too few clean beats to follow breathing")
    total = Spectrum(freq_hz, fused)
    rate_hz = peak_hz(total, BREATH_BAND_HZ)
    share = band_power_share(total, rate_hz, _PEAK_HALF_WIDTH_HZ, BREATH_BAND_HZ)
    log.debug(
        "breathing estimates %s weights %s fused %.2f share %.2f",
        estimates,
        weights,
        rate_hz * 60.0,
        share,
    )
    if share < MIN_PEAK_SHARE:
        return Breathing(None, "no clear breathing rhythm in the pulse")
    if rate_hz <= BREATH_BAND_HZ[0] + EDGE_HZ:
        # A maximum on the band's lower edge is the slope of slow drift, not a rhythm.
        return Breathing(None, "breathing slower than can be resolved in this scan")
    # Smart fusion: two modulations must point at the fused rate, or one very clearly.
    agreeing = [
        w
        for e, w in zip(estimates, weights, strict=True)
        if abs(e - rate_hz * 60.0) <= MAX_SPREAD_BPM
    ]
    if len(agreeing) < MIN_AGREEING and max(agreeing, default=0.0) < SOLO_PEAK_SHARE:
        return Breathing(None, "the pulse's breathing modulations disagree")
    return Breathing(rate_hz * 60.0, None)
