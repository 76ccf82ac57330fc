"""Head motion from the face-box trajectory: remove it from the colours, find its rhythm.

Shapes: ``regressors(face (n, 4), fs_hz) -> (n, k)``; ``remove_motion(rgb (n, regions, 3),
face (n, 4), bounds (n, regions, 4), fs_hz, seen: tuple of (n, 4)) -> (n, regions, 3)``;
``rhythms(face (n, 4), fs_hz) -> tuple of MotionRhythm``.

Every trace carries the face box of each frame, and that box is the motion record: its
centre (x, y) and size over time. A browser's sampling box is smoothed (the scan page
glides it and ignores moves under a dead band), so a small sway never moves it although
the regions slide over the face; version-2 traces also carry the detector's raw boxes
(``detection``), which do show the sway. The colours follow the *difference* between the
face and the sampling box, so both enter the regression, and rhythms are sought in both.
Two uses.

1. **Removal.** When the box moves relative to the skin (a detector that lags or jitters,
   as a browser's does; a head that turns), each region slides over colour gradients (an
   eyebrow, a shadow, the hairline) and its mean colour changes with the box position. To
   first order that change is a linear function of the box offset and, for a box that
   lags, of its velocity; and it jumps whenever an edge crosses a pixel. So each region's
   relative colour is regressed on the box centre, size and their first differences, on
   the region's integer pixel edges and their second-order products (band-limited like the
   pulse, least squares), and the fitted part is removed: the idea of regressing fMRI time
   series on head-realignment parameters (Friston et al. 1996, "Movement-related effects
   in fMRI time-series", Magn. Reson. Med. 35(3)). The pulse has no reason to follow the
   box, so it survives (a 30 s scan has ~900 samples for at most 22 regressors per region;
   a still box contributes none).
2. **Refusal.** A head that moves in a rhythm inside the heart band (rocking, nodding in
   time, walking) leaves a narrow spectral peak that no colour method can tell from a
   pulse, and regression cannot fully remove what a tracker did not see. So the box's
   rhythms are found here (spectral peaks of the box trajectory holding a large share of
   its band power and moving the face by a visible amount), and the quality gate refuses a
   heart rate that falls on one of them or on its second or third harmonic, and any scan
   with a rhythm larger than ``STRONG_RHYTHM_FACE_WIDTHS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.spectrum import band_power_share, bandpass, peak_hz, power_spectrum

FloatArray = npt.NDArray[np.float64]

REGRESSION_BAND_HZ = (0.3, 4.0)  # where colour and box are compared (pulse band, with margin)
RHYTHM_BAND_HZ = (0.6, 3.3)  # motion rhythms that can pose as a heart rate
RHYTHM_PEAK_SHARE = 0.35  # share of the box's band power in one peak: a rhythm, not jitter
RHYTHM_MIN_FACE_WIDTHS = 0.005  # RMS movement in the band; below it motion is invisible
RHYTHM_HALF_WIDTH_HZ = 0.06
MAX_RHYTHMS = 3
HARMONICS = (1, 2, 3)  # a rhythm's artefact is rarely a pure sinusoid
STRONG_RHYTHM_FACE_WIDTHS = 0.008  # RMS: a rhythm this large is refused wherever the pulse is
MIN_SEEN_MOTION_PX = 0.3  # RMS in the band: a face track that moved less is not regressed on


@dataclass(frozen=True, slots=True)
class MotionRhythm:
    """A periodic head movement: its frequency, and its RMS size in face widths."""

    freq_hz: float
    amplitude: float


def _box_series(face: FloatArray) -> FloatArray:
    """``(n, 4)`` centre x, centre y, width and height, in face widths (median width = 1)."""
    width = max(float(np.median(face[:, 2])), 1.0)
    centre = face[:, :2] + face[:, 2:] / 2.0
    return np.column_stack([centre, face[:, 2:]]) / width


def _standardise(raw: FloatArray, fs_hz: float) -> FloatArray:
    out = bandpass(raw - raw.mean(axis=0), fs_hz, REGRESSION_BAND_HZ)
    scale = out.std(axis=0)
    keep = scale > 1e-9
    return np.asarray(out[:, keep] / scale[keep], dtype=np.float64)


def regressors(face: FloatArray, fs_hz: float) -> FloatArray:
    """``(n, <= 8)`` band-passed box position, size and their velocities, unit variance."""
    series = _box_series(face)
    velocity = np.gradient(series, axis=0) * fs_hz
    return _standardise(np.column_stack([series, velocity]), fs_hz)


def remove_motion(
    rgb: FloatArray,
    face: FloatArray,
    bounds: FloatArray,
    fs_hz: float,
    seen: tuple[FloatArray, ...] = (),
) -> FloatArray:
    """Colours with the part that follows the face box removed (relative, per channel).

    ``bounds (n, regions, 4)`` are each region's integer pixel edges: a region's mean jumps
    when an edge crosses a pixel, a step that the smooth box position does not describe.
    ``seen`` (``(n, 4)`` boxes of the face's own movement: the detector's raw boxes, the
    page's face track, when the trace has them) adds what a smoothed sampling box lags
    behind or never followed.
    """
    shared = np.column_stack([regressors(box, fs_hz) for box in (face, *seen)])
    mean = rgb.mean(axis=0, keepdims=True)
    relative = rgb / np.maximum(mean, 1e-9) - 1.0
    target = bandpass(relative, fs_hz, REGRESSION_BAND_HZ)
    cleaned = relative.copy()
    for k in range(rgb.shape[1]):
        x = np.column_stack([shared, _region_terms(bounds[:, k], fs_hz)])
        if x.shape[1] == 0 or x.shape[0] < 8 * x.shape[1]:
            continue
        beta, *_ = np.linalg.lstsq(x, target[:, k], rcond=None)
        cleaned[:, k] -= x @ beta
    return np.asarray((1.0 + cleaned) * mean, dtype=np.float64)


def moved(boxes: tuple[FloatArray, ...], fs_hz: float) -> tuple[FloatArray, ...]:
    """The boxes whose centre moved at least ``MIN_SEEN_MOTION_PX`` (RMS, regression band).

    A still face's track is sub-pixel noise, and the pulse itself nudges it (a face does
    not brighten evenly, and the head moves a little with each beat): scaled to unit
    variance such a track is a pulse regressor, and regressing on it removes the pulse.
    """
    out = []
    for box in boxes:
        centre = box[:, :2] + box[:, 2:] / 2.0
        band = bandpass(centre - centre.mean(axis=0), fs_hz, REGRESSION_BAND_HZ)
        if float(np.sqrt(np.mean(np.sum(band**2, axis=1)))) >= MIN_SEEN_MOTION_PX:
            out.append(box)
    return tuple(out)


def _region_terms(edges: FloatArray, fs_hz: float) -> FloatArray:
    """A region's integer edges and their products (the second-order terms).

    A strip gained at one edge is longer or shorter as another edge moves. Measured on
    browser-box traces of Fitzpatrick V-VI faces: first-order terms left a residual artefact
    the size of the pulse, and adding these raised the fused SNR by 1-3 dB; adding products
    with the box centre as well removed pulse too (1-2 dB lower).
    """
    e = edges - edges.mean(axis=0)
    products = [e[:, i] * e[:, j] for i in range(4) for j in range(i, 4)]
    return _standardise(np.column_stack([e, *products]), fs_hz)


def rhythms(face: FloatArray, fs_hz: float) -> tuple[MotionRhythm, ...]:
    """Periodic movements of the box inside the heart band, strongest first."""
    series = _box_series(face)
    if series.shape[0] < 4 * fs_hz:
        return ()
    band = bandpass(series - series.mean(axis=0), fs_hz, (RHYTHM_BAND_HZ[0] * 0.8, 4.0))
    found: list[MotionRhythm] = []
    for axis in range(series.shape[1]):
        amplitude = float(band[:, axis].std())
        if amplitude < RHYTHM_MIN_FACE_WIDTHS:
            continue
        spectrum = power_spectrum(band[:, axis], fs_hz)
        f0 = peak_hz(spectrum, RHYTHM_BAND_HZ)
        share = band_power_share(spectrum, f0, RHYTHM_HALF_WIDTH_HZ, RHYTHM_BAND_HZ)
        if share >= RHYTHM_PEAK_SHARE and amplitude * np.sqrt(share) >= RHYTHM_MIN_FACE_WIDTHS:
            found.append(MotionRhythm(f0, amplitude * float(np.sqrt(share))))
    return strongest(tuple(found))


def strongest(found: tuple[MotionRhythm, ...]) -> tuple[MotionRhythm, ...]:
    """The ``MAX_RHYTHMS`` largest rhythms, largest first."""
    return tuple(sorted(found, key=lambda r: -r.amplitude)[:MAX_RHYTHMS])


def strong(found: tuple[MotionRhythm, ...]) -> bool:
    """True when a rhythm moves the face enough to refuse the scan whatever its rate.

    The video path's tracker follows such a face closely and may still read the pulse; the
    browser's lagging box leaves an artefact that can outshine it. The two paths of one
    scan must agree (the same rate, or both refuse), so both refuse on the box rhythm alone.
    """
    return any(r.amplitude >= STRONG_RHYTHM_FACE_WIDTHS for r in found)


def coincides(rate_hz: float, found: tuple[MotionRhythm, ...], tolerance_hz: float) -> bool:
    """True when ``rate_hz`` lies on a motion rhythm or its second or third harmonic."""
    return any(abs(rate_hz - k * r.freq_hz) <= tolerance_hz for r in found for k in HARMONICS)


def remove_sampling(
    rgb: FloatArray,
    rounding: FloatArray,
    fs_hz: float,
    slips: tuple[FloatArray, ...] = (),
    head: tuple[FloatArray, ...] = (),
) -> FloatArray:
    """Colours with only the sampling's own artefacts removed, not the head's motion.

    ``rounding (n, regions, 4)``: what rounding each region edge to whole pixels added
    (integer minus exact edge; zero in the video path, which weighs the pixels an edge
    cuts): a region's mean jumps when an edge crosses a pixel. ``slips``: ``(n, 4)`` the
    sampling box minus the face's own position (a box that jitters or lags slides the
    regions over a face that may be still). Only the part of a slip that the head's own
    motion (``head``, ``(n, 4)`` boxes) does not explain is removed: a box that does not
    follow the face slips by exactly the head's motion, and that part is the question the
    caller asks (did the colours follow the head?), not an artefact to take out first.
    """
    shared = [regressors(slip, fs_hz) for slip in slips]
    if shared and head:
        h = np.column_stack([regressors(box, fs_hz) for box in head])
        own = [s - h @ np.linalg.lstsq(h, s, rcond=None)[0] for s in shared]
        shared = [_standardise(s, fs_hz) for s in own]
    mean = rgb.mean(axis=0, keepdims=True)
    relative = rgb / np.maximum(mean, 1e-9) - 1.0
    target = bandpass(relative, fs_hz, REGRESSION_BAND_HZ)
    cleaned = relative.copy()
    for k in range(rgb.shape[1]):
        x = np.column_stack([*shared, _standardise(rounding[:, k], fs_hz)])
        if x.shape[1] == 0 or x.shape[0] < 8 * x.shape[1]:
            continue
        beta, *_ = np.linalg.lstsq(x, target[:, k], rcond=None)
        cleaned[:, k] -= x @ beta
    return np.asarray((1.0 + cleaned) * mean, dtype=np.float64)
