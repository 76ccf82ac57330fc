"""From a colour trace (or a video turned into one) to a :class:`VitalsResult`.

Pipeline: resample on real timestamps -> capture gate -> POS + CHROM per region, fused by
SNR -> signal gate -> heart rate (spectral, checked against beats) -> breathing rate and
HRV, each only when the signal supports it. CPU-bound and synchronous: call it from a
worker process (:mod:`pulseloop.vitals.pool`), never on an event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pulseloop.vitals import breath, heart, motion, quality
from pulseloop.vitals.fusion import Pulse, blue_led, fuse, rival
from pulseloop.vitals.resample import Uniform, resample
from pulseloop.vitals.result import PulseSpectrum, Quality, Vitals, VitalsResult, Waveform
from pulseloop.vitals.spectrum import bandpass
from pulseloop.vitals.trace import REGION_NAMES, Trace

if TYPE_CHECKING:
    from pulseloop.vitals.video import VideoSource

WAVEFORM_FS_HZ = 15.0
SPECTRUM_RANGE_BPM = (30.0, 240.0)
# A face box that moves less than this (RMS, px, in the motion regression's band) is still:
# its edges cannot move a colour measurably, so there is no motion to remove. Regressing on
# such a box fits noise, each channel differently, which breaks the common-mode structure
# of a light change that the colour methods cancel (measured on still Fitzpatrick VI faces
# under flicker, tracked to 0.01 px: the pulse SNR fell from 2.5 to -0.5 dB).
STILL_BOX_PX = 0.05

Progress = Callable[[int, int | None], None]


def _plots(pulse: Pulse) -> tuple[Waveform, PulseSpectrum]:
    step = max(round(pulse.fs_hz / WAVEFORM_FS_HZ), 1)
    waveform = Waveform(pulse.fs_hz / step, tuple(float(v) for v in pulse.signal[::step]))
    grid_bpm = np.arange(SPECTRUM_RANGE_BPM[0], SPECTRUM_RANGE_BPM[1] + 0.5, 1.0)
    power = np.interp(grid_bpm / 60.0, pulse.spectrum.freq_hz, pulse.spectrum.power)
    power /= float(power.max()) or 1.0
    return waveform, PulseSpectrum(
        tuple(float(f) for f in grid_bpm), tuple(float(p) for p in power)
    )


def _agreeing_regions(pulse: Pulse) -> int:
    regions = {
        c.name.split(":", 1)[1]
        for c in pulse.candidates
        if abs(c.f0_hz - pulse.f0_hz) <= quality.REGION_AGREE_HZ
    }
    return len(regions)


def _box_still(face: npt.NDArray[np.float64], fs_hz: float) -> bool:
    """True when the box moves less than ``STILL_BOX_PX`` in the regression band."""
    if face.shape[0] < 8:
        return True
    moving = bandpass(face - face.mean(axis=0), fs_hz, motion.REGRESSION_BAND_HZ)
    return bool(np.sqrt((moving**2).mean(axis=0)).max() < STILL_BOX_PX)


def _without_motion(
    uniform: Uniform, seen: tuple[npt.NDArray[np.float64], ...]
) -> npt.NDArray[np.float64]:
    """The colours with the motion of the sampling box (when it moved) and of ``seen`` removed."""
    if not seen and _box_still(uniform.face, uniform.fs_hz):
        return uniform.rgb
    return motion.remove_motion(uniform.rgb, uniform.face, uniform.bounds, uniform.fs_hz, seen)


def _motion_changes_rate(uniform: Uniform, pulse: Pulse) -> bool:
    """True when the rate without the head's motion removed is a different one.

    Either reading may be the artefact: regression removes a sway the colours followed,
    but it also removes a pulse the head moved in time with (a sway at the heart rate,
    the head's own beat), leaving a harmonic. A rate that depends on how the motion is
    modelled is not a measurement, so the scan is refused as motion ("hold still").

    Both paths are held to the same comparison, whenever any motion was regressed out:
    the sampling's own artefacts are removed from both readings (edges rounded to whole
    pixels; a sampling box that jitters or lags over a face it does not follow, as far as
    the face's own track does not explain it), the head's motion only from one
    (:func:`pulseloop.vitals.motion.remove_sampling`). The video path has neither artefact,
    so its other reading is the raw colours; before, it was never checked: a 1 px sway at
    the heart rate read 72 raw and was refused as weak regressed, while the browser path's
    two readings (its box only, and box and face track) both said 144, accepted.
    """
    rounding = uniform.bounds - (uniform.bounds if uniform.exact is None else uniform.exact)
    slips: tuple[npt.NDArray[np.float64], ...] = ()
    head: tuple[npt.NDArray[np.float64], ...] = ()
    if uniform.track is not None:
        slips = motion.moved((uniform.face - uniform.track,), uniform.fs_hz)
        head = motion.moved((uniform.track,), uniform.fs_hz)
    plain = fuse(
        motion.remove_sampling(uniform.rgb, rounding, uniform.fs_hz, slips, head),
        uniform.fs_hz,
        REGION_NAMES,
    )
    return abs(plain.f0_hz - pulse.f0_hz) > quality.REGION_AGREE_HZ


def _head_records(uniform: Uniform) -> tuple[npt.NDArray[np.float64], ...]:
    """The boxes whose rhythms are sized: the box sampled with, and the face's own motion.

    A rhythm's size (face widths, RMS) is held to one bar in both paths, so the face's own
    motion is read from the most precise record there is: the video path's box (its tracker
    follows the face to ~0.01 px), or the page's per-frame face track (0.01-0.02 px). The
    detector's raw boxes jitter by 1-2 % of the face width and are used only without a
    track: sized on them, a 0.7 % sway measured 1.0 %, over the bar the video path held
    it under.
    """
    own = uniform.track if uniform.track is not None else uniform.detection
    return (uniform.face,) if own is None else (uniform.face, own)


def analyze_trace(trace: Trace) -> VitalsResult:
    """Vital signs from a validated colour trace, or a refusal with its reason."""
    uniform = resample(trace)
    measures = quality.measure(trace, uniform)
    base = Quality(
        face_coverage=measures.face_coverage,
        motion=measures.motion,
        brightness=measures.brightness,
        frame_rate_hz=measures.frame_rate_hz,
        duration_s=measures.duration_s,
    )
    failure = quality.capture_failure(measures)
    if failure is not None:
        return VitalsResult(Vitals(), base, failure_reason=failure)
    # The raw detector boxes and the page's per-frame face track (version 2) show the head
    # motion a smoothed sampling box hides.
    seen = tuple(m for m in (uniform.detection, uniform.track) if m is not None)
    moving = motion.moved(seen, uniform.fs_hz)
    cleaned = _without_motion(uniform, moving)
    pulse = fuse(cleaned, uniform.fs_hz, REGION_NAMES)
    depends_on_motion = cleaned is not uniform.rgb and _motion_changes_rate(uniform, pulse)
    beats = heart.beats(pulse.signal, pulse.fs_hz, pulse.f0_hz)
    rate = heart.heart_rate(pulse, beats)
    waveform, spectrum = _plots(pulse)
    head_rhythms = motion.strongest(
        tuple(r for box in _head_records(uniform) for r in motion.rhythms(box, uniform.fs_hz))
    )
    on_rhythm = (
        depends_on_motion
        or motion.strong(head_rhythms)
        or motion.coincides(pulse.f0_hz, head_rhythms, quality.RHYTHM_TOLERANCE_HZ)
    )
    failure = quality.signal_failure(
        measures,
        pulse.snr_db,
        _agreeing_regions(pulse),
        rate.agree,
        rival=rival(pulse) is not None or blue_led(cleaned, pulse),
        on_motion_rhythm=on_rhythm,
    )
    if failure is not None:
        refused = replace(base, snr_db=pulse.snr_db)
        return VitalsResult(Vitals(), refused, waveform, spectrum, failure)
    duration_s = measures.duration_s
    hrv = heart.hrv(beats, pulse.snr_db, duration_s)
    breathing = breath.respiratory_rate(uniform.rgb, uniform.fs_hz, beats, duration_s)
    unavailable: dict[str, str] = {}
    if breathing.reason is not None:
        unavailable["respiratory_rate_bpm"] = breathing.reason
    if hrv.reason is not None:
        unavailable["hrv_sdnn_ms"] = unavailable["hrv_rmssd_ms"] = hrv.reason
    vitals = Vitals(rate.bpm, breathing.rate_bpm, hrv.sdnn_ms, hrv.rmssd_ms, unavailable)
    accepted = replace(
        base, snr_db=pulse.snr_db, confidence=quality.confidence(measures, pulse.snr_db)
    )
    return VitalsResult(vitals, accepted, waveform, spectrum, None)


def analyze_video(path: str | Path | VideoSource, progress: Progress | None = None) -> VitalsResult:
    """Vital signs from a video file, or a :class:`~pulseloop.vitals.video.VideoSource`
    such as a sealed upload (the face is found in every frame).

    ``progress(frames_done, frames_total_or_None)`` is called while decoding. Raises
    :class:`~pulseloop.vitals.errors.VideoUnreadable` for files that are not decodable video.
    """
    from pulseloop.vitals.video import trace_from_video

    return analyze_trace(trace_from_video(path, progress=progress))
