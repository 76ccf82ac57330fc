"""Combine skin regions and rPPG methods into one pulse signal, weighted by quality.

Shapes: ``fuse(rgb (n, 4 regions, 3), fs_hz) -> Pulse`` with ``signal (n,)``.

Each region is run through POS and CHROM (8 candidate signals). Each candidate is band-passed
to the pulse band, scaled to unit variance, and scored by its own SNR at its own spectral
peak. Candidates within ``KEEP_WITHIN_DB`` of the best *and peaking at the same frequency*
are averaged with weights equal to their linear SNR, after flipping any that run in
antiphase to the best. Considered and rejected: picking only the best candidate (throws away
the noise averaging of several regions) and averaging everything, or everything within a
few dB (a region hit by a shadow or a moving fringe of hair peaks elsewhere and only adds
noise: measured on compressed video, it pulled the fused SNR 2-3 dB below the best
candidate's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.methods import chrom, pos
from pulseloop.vitals.spectrum import PULSE_BAND_HZ, Spectrum, bandpass, peak_hz, power_spectrum
from pulseloop.vitals.spectrum import snr_db as spectrum_snr_db

FloatArray = npt.NDArray[np.float64]

HEART_BAND_HZ = (0.7, 3.2)  # 42-192 bpm: where a resting or exercising heart rate is searched
KEEP_WITHIN_DB = 6.0
FLAT_STD = 1e-9  # a band-passed POS/CHROM signal this small is numerical noise
NO_SIGNAL_DB = -60.0
SAME_HZ = 0.05  # candidates peaking further than this from the best one are not averaged


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """One region x method pulse signal and its score."""

    name: str
    signal: FloatArray
    f0_hz: float
    snr_db: float


@dataclass(frozen=True, slots=True, eq=False)
class Pulse:
    """The fused pulse signal, its spectrum, and the candidates it came from."""

    signal: FloatArray
    fs_hz: float
    spectrum: Spectrum
    f0_hz: float
    snr_db: float
    candidates: tuple[Candidate, ...]


def _score(name: str, raw: FloatArray, fs_hz: float) -> Candidate:
    filtered = bandpass(raw, fs_hz, PULSE_BAND_HZ)
    scale = float(filtered.std())
    if scale < FLAT_STD:
        # Nothing varies (a still photo with a noiseless camera): rounding error only.
        return Candidate(name, np.zeros_like(filtered), HEART_BAND_HZ[0], NO_SIGNAL_DB)
    filtered = filtered / scale
    spectrum = power_spectrum(filtered, fs_hz)
    f0 = peak_hz(spectrum, HEART_BAND_HZ)
    return Candidate(name, filtered, f0, spectrum_snr_db(spectrum, f0))


def fuse(rgb: FloatArray, fs_hz: float, region_names: tuple[str, ...]) -> Pulse:
    """Run POS and CHROM on every region and fuse the good ones by SNR."""
    per_method = {"pos": pos(rgb, fs_hz), "chrom": chrom(rgb, fs_hz)}
    candidates = [
        _score(f"{method}:{region}", signals[:, k], fs_hz)
        for method, signals in per_method.items()
        for k, region in enumerate(region_names)
    ]
    best = max(candidates, key=lambda c: c.snr_db)
    fused = np.zeros_like(best.signal)
    total_weight = 0.0
    for cand in candidates:
        if cand.snr_db < best.snr_db - KEEP_WITHIN_DB or abs(cand.f0_hz - best.f0_hz) > SAME_HZ:
            continue
        weight = 10.0 ** (cand.snr_db / 10.0)
        sign = 1.0 if float(np.dot(cand.signal, best.signal)) >= 0 else -1.0
        fused += weight * sign * cand.signal
        total_weight += weight
    fused /= total_weight
    if float(fused.std()) < FLAT_STD:
        return Pulse(
            fused, fs_hz, power_spectrum(fused, fs_hz), best.f0_hz, NO_SIGNAL_DB, tuple(candidates)
        )
    fused /= float(fused.std())
    spectrum = power_spectrum(fused, fs_hz)
    f0 = peak_hz(spectrum, HEART_BAND_HZ)
    return Pulse(fused, fs_hz, spectrum, f0, spectrum_snr_db(spectrum, f0), tuple(candidates))
