"""The quality gate: measure the scan, and refuse it with a reason a person can act on.

Shapes: ``measure(trace, uniform) -> Measures`` (scalars); ``motion_per_s(face (n, 4),
fs_hz) -> float``.

Two stages. Before any signal processing, the capture itself is checked (duration, frame
rate, face coverage, exposure, gross motion): those failures have a direct fix ("hold the
phone still", "face a window"). After the pulse is extracted, the signal is checked (SNR,
agreement between regions and between spectral and beat-to-beat rates, no rival pulse at
another rate, not on a head-motion rhythm); a weak signal with noticeable motion is blamed
on the motion, and one from a dim face on the light, because that is what the person can
change. Thresholds are module constants so the benchmark and the docs cite one place.

Fairness. Every signal threshold is on the SNR of the combined pulse, never on its
amplitude or on the skin's brightness: darker skin reflects less light and carries a 2-3x
weaker pulse, so an amplitude or brightness bar refuses darker-skinned people first. The
capture gate's darkness check is therefore a floor where no camera can resolve a pulse
(``DARK_FLOOR``, a luma at which quantisation alone hides it), not a typical-skin
brightness; between the floor and ``MIN_BRIGHTNESS`` a scan is refused as too dark only
when its signal is weak.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy.ndimage import median_filter

from pulseloop.vitals.resample import Uniform, frame_rate_hz
from pulseloop.vitals.trace import Trace

FloatArray = npt.NDArray[np.float64]

MIN_DURATION_S = 10.0
MIN_FRAME_RATE_HZ = 10.0
NO_FACE_COVERAGE = 0.25  # below: the camera never really saw a face
MIN_FACE_COVERAGE = 0.8  # below: the face was lost for too much of the scan
DARK_FLOOR = 20.0  # mean skin luma below which a scan is refused as too dark, always
MIN_BRIGHTNESS = 40.0  # below this mean skin luma, a weak signal is blamed on the light
MAX_BRIGHTNESS = 235.0
MAX_CHANNEL = 250.0  # a skin channel this close to 255 is clipped: the pulse is cut off
MAX_MOTION = 0.6  # face widths per second of head movement: refused whatever the signal
BLAME_MOTION = 0.15  # above this a weak signal is blamed on motion
MIN_SNR_DB = 1.0
MIN_AGREEING_REGIONS = 2
REGION_AGREE_HZ = 0.05
RHYTHM_TOLERANCE_HZ = 0.1  # a heart rate this close to a head-motion rhythm (or 2x, 3x)


class FailureReason(StrEnum):
    """Why a scan was refused; each has a message telling the person what to do."""

    NO_FACE = "no_face"
    FACE_LOST = "face_lost"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    TOO_MUCH_MOTION = "too_much_motion"
    LOW_FRAME_RATE = "low_frame_rate"
    TOO_SHORT = "too_short"
    WEAK_SIGNAL = "weak_signal"


FAILURE_MESSAGES: dict[FailureReason, str] = {
    FailureReason.NO_FACE: "No face was found. Hold the phone at arm's length with your whole "
    "face inside the guide.",
    FailureReason.FACE_LOST: "Your face left the frame during the scan. Keep your whole face "
    "inside the guide until the scan ends.",
    FailureReason.TOO_DARK: "It is too dark. Face a window or a lamp and try again.",
    FailureReason.TOO_BRIGHT: "Your face is over-exposed. Move out of direct sunlight or away "
    "from the lamp and try again.",
    FailureReason.TOO_MUCH_MOTION: "You moved too much. Rest your arms, hold the phone still "
    "and stay still while scanning.",
    FailureReason.LOW_FRAME_RATE: "The camera delivered too few frames per second. Close other "
    "apps or tabs and try again.",
    FailureReason.TOO_SHORT: "The scan was too short. Keep still until the progress bar is full.",
    FailureReason.WEAK_SIGNAL: "The pulse signal was too weak to measure. Use even, bright light "
    "on your face, stay still, and try again.",
}


@dataclass(frozen=True, slots=True)
class Measures:
    """Capture quality, before any pulse is extracted."""

    face_coverage: float
    motion: float
    brightness: float
    max_channel: float
    frame_rate_hz: float
    duration_s: float
    scene_brightness: float | None = None


def motion_per_s(face: FloatArray, fs_hz: float) -> float:
    """RMS speed of the face centre in face widths per second (detector jitter filtered)."""
    if face.shape[0] < 3:
        return 0.0
    width = float(np.median(face[:, 2]))
    centre = face[:, :2] + face[:, 2:] / 2.0
    size = max(round(fs_hz / 5.0) | 1, 3)  # ~0.2 s median: keeps motion, drops jitter
    smooth = median_filter(centre, size=(size, 1), mode="nearest")
    speed = np.linalg.norm(np.diff(smooth, axis=0), axis=1) * fs_hz / max(width, 1.0)
    return float(np.sqrt(np.mean(speed**2)))


def measure(trace: Trace, uniform: Uniform) -> Measures:
    """Capture measures of a trace and its uniform resampling."""
    found = trace.face_found
    coverage = float(found.mean())
    if uniform.valid.size:
        coverage = min(coverage, float(uniform.valid.mean()))
    skin = trace.rgb[found]
    if skin.size:
        mean_rgb = skin.mean(axis=(0, 1))
        luma = float(0.299 * mean_rgb[0] + 0.587 * mean_rgb[1] + 0.114 * mean_rgb[2])
        max_channel = float(np.median(skin.max(axis=(1, 2))))
    else:
        luma, max_channel = 0.0, 0.0
    motion = motion_per_s(uniform.face, uniform.fs_hz) if uniform.face.size else 0.0
    return Measures(
        face_coverage=coverage,
        motion=motion,
        brightness=luma,
        max_channel=max_channel,
        frame_rate_hz=frame_rate_hz(trace.t_ms),
        duration_s=(float(trace.t_ms[-1]) - float(trace.t_ms[0])) / 1000.0,
        scene_brightness=trace.scene_brightness,
    )


def capture_failure(m: Measures) -> FailureReason | None:
    """The first capture problem, in the order a person should fix them."""
    if m.duration_s < MIN_DURATION_S:
        return FailureReason.TOO_SHORT
    if m.frame_rate_hz < MIN_FRAME_RATE_HZ:
        return FailureReason.LOW_FRAME_RATE
    if m.face_coverage < NO_FACE_COVERAGE:
        # A face too dark to detect is a lighting problem, not a framing one.
        dark = m.scene_brightness is not None and m.scene_brightness < MIN_BRIGHTNESS
        return FailureReason.TOO_DARK if dark else FailureReason.NO_FACE
    if m.face_coverage < MIN_FACE_COVERAGE:
        return FailureReason.FACE_LOST
    if m.brightness < DARK_FLOOR:
        return FailureReason.TOO_DARK
    if m.brightness > MAX_BRIGHTNESS or m.max_channel > MAX_CHANNEL:
        return FailureReason.TOO_BRIGHT
    if m.motion > MAX_MOTION:
        return FailureReason.TOO_MUCH_MOTION
    return None


def signal_failure(
    m: Measures,
    snr_db: float,
    agreeing_regions: int,
    rates_agree: bool,
    rival: bool = False,
    on_motion_rhythm: bool = False,
) -> FailureReason | None:
    """Refuse a pulse that is weak, ambiguous, unconfirmed, or on a head-motion rhythm.

    ``rival``: another method or region has a clear pulse at a different rate.
    ``on_motion_rhythm``: the rate coincides with a periodic head movement (or a harmonic).
    """
    if on_motion_rhythm:
        return FailureReason.TOO_MUCH_MOTION
    weak = (
        snr_db < MIN_SNR_DB or agreeing_regions < MIN_AGREEING_REGIONS or not rates_agree or rival
    )
    if not weak:
        return None
    if m.motion > BLAME_MOTION:
        return FailureReason.TOO_MUCH_MOTION
    return FailureReason.TOO_DARK if m.brightness < MIN_BRIGHTNESS else FailureReason.WEAK_SIGNAL


def confidence(m: Measures, snr_db: float) -> float:
    """0-1: SNR on a logistic scale, discounted for lost face time and motion."""
    snr_part = 1.0 / (1.0 + np.exp(-(snr_db - 4.0) / 1.5))
    motion_part = max(0.0, 1.0 - m.motion / MAX_MOTION)
    return float(snr_part * m.face_coverage * motion_part)
