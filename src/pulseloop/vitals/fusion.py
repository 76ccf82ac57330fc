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

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.methods import chrom, pbv, pos
from pulseloop.vitals.methods.chrom import moving_mean
from pulseloop.vitals.methods.pbv import SIGNATURES
from pulseloop.vitals.spectrum import PULSE_BAND_HZ, Spectrum, bandpass, peak_hz, power_spectrum
from pulseloop.vitals.spectrum import snr_db as spectrum_snr_db

FloatArray = npt.NDArray[np.float64]

HEART_BAND_HZ = (0.7, 3.2)  # 42-192 bpm: where a resting or exercising heart rate is searched
KEEP_WITHIN_DB = 6.0
FLAT_STD = 1e-9  # a band-passed POS/CHROM signal this small is numerical noise
NO_SIGNAL_DB = -60.0
SAME_HZ = 0.05  # candidates peaking further than this from the best one are not averaged
RIVAL_MIN_DB = 3.0  # a candidate this clear, peaking elsewhere, makes the rate ambiguous...
RIVAL_WITHIN_DB = 3.0  # ... when it is also nearly as clear as the fused pulse
RIVAL_APART_HZ = 0.1
RIVAL_MIN_REGIONS = 2
BLUE_LEAD = 1.2  # blue this much stronger than green and red: not a blood pulse


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """One region x method pulse signal and its score."""

    name: str
    signal: FloatArray = field(repr=False)
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


def rival(pulse: Pulse) -> Candidate | None:
    """The clearest candidate of a second, regional pulse at another rate, if there is one.

    POS, CHROM and PBV weigh the channels differently and each region sees other noise: a
    real pulse shows at one rate in all that see it clearly. Clear peaks (SNR >=
    ``RIVAL_MIN_DB`` and within ``RIVAL_WITHIN_DB`` of the fused pulse's) at one other rate
    in at least two regions mean the colours hold two rhythms, one of them not a heart
    (head motion the box did not record, flicker), and the scan cannot say which. A clear
    peak in one region only is that region's artefact (a fringe of hair on the forehead
    moving with the head: measured on swaying synthetic faces, CHROM on the forehead alone
    peaked at the sway's harmonics at 4-5 dB) and is outvoted by the fusion.
    """
    floor = max(RIVAL_MIN_DB, pulse.snr_db - RIVAL_WITHIN_DB)
    apart = sorted(
        (
            c
            for c in pulse.candidates
            if abs(c.f0_hz - pulse.f0_hz) > RIVAL_APART_HZ and c.snr_db >= floor
        ),
        key=lambda c: -c.snr_db,
    )
    for lead in apart:
        regions = {c.name.split(":", 1)[1] for c in apart if abs(c.f0_hz - lead.f0_hz) <= SAME_HZ}
        if len(regions) >= RIVAL_MIN_REGIONS:
            return lead
    return None


def colour_signature(rgb: FloatArray, pulse: Pulse, region: int) -> FloatArray:
    """``(3,)`` how strongly R, G, B of one region follow the pulse at its rate (max 1).

    Each channel, divided by its running mean and band-passed to +-0.1 Hz around the pulse
    rate, is projected on the fused pulse. Blood and melanin both absorb blue: in every
    skin tone green (or, on very dark skin, red) carries the largest pulsatile change and
    blue the smallest (de Haan & van Leest 2014; Jacques 2013). A "pulse" led by blue is a
    region sliding over something else (hair, a wall) in time with a small movement.
    """
    band = (max(pulse.f0_hz - 0.1, 0.3), pulse.f0_hz + 0.1)
    window = max(round(1.6 * pulse.fs_hz), 4)
    normalised = rgb[:, region] / (moving_mean(rgb[:, region], window) + 1e-9) - 1.0
    channels = bandpass(normalised, pulse.fs_hz, band)
    reference = bandpass(pulse.signal, pulse.fs_hz, band)
    weights = channels.T @ reference / max(float(reference @ reference), 1e-30)
    return np.asarray(weights / max(float(np.abs(weights).max()), 1e-30), dtype=np.float64)


def blue_led(rgb: FloatArray, pulse: Pulse) -> bool:
    """True when blue, not green or red, leads the pulse's colour change in most regions.

    Measured: a Fitzpatrick VI face rocking by 0.5 px at 54/min, below the scan page's box
    dead band (so its boxes never moved), read 54 bpm from the trace with blue leading in
    all four regions; real pulses of every tone had green (or red) leading. One region can
    be led by blue through noise or a hairline, so most regions must agree.
    """
    led = 0
    for region in range(rgb.shape[1]):
        r, g, b = np.abs(colour_signature(rgb, pulse, region))
        led += bool(b > BLUE_LEAD * max(r, g))
    return bool(led > int(rgb.shape[1]) // 2)


def fuse(rgb: FloatArray, fs_hz: float, region_names: tuple[str, ...]) -> Pulse:
    """Run POS and CHROM on every region and fuse the good ones by SNR."""
    per_method = {"pos": pos(rgb, fs_hz), "chrom": chrom(rgb, fs_hz)}
    for name, signature in SIGNATURES.items():
        per_method[name] = pbv(rgb, fs_hz, signature)
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
