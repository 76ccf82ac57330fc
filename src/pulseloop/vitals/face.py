"""Find and follow one face through a video, with a detector that ships in OpenCV.

Shapes: ``FaceTracker.track(gray (h, w) uint8) -> (4,) [x, y, w, h] float or None``.

Design record. The detector is OpenCV's Haar frontal-face cascade: it ships inside
``opencv-python-headless`` 4.x (nothing is downloaded; 5.0 dropped the cascades, hence the
pin) and finds the bundled test face and real faces well. Rejected: dlib HOG (an extra
compiled dependency), the UltraLight ONNX model (ships only inside ``vitallens`` and needs
onnxruntime), mediapipe (bundled models only up to 0.10.21, which needs numpy < 2). A full
Haar search costs ~8 ms on a 320x240 image, too slow for every frame of a 30 fps scan on a
shared core, so the tracker searches the whole (downscaled) frame only when it has no
face, and otherwise runs a small search in a window around the last box every few frames.

The detector only places the box. Haar boxes jitter by pixels from frame to frame and
their sizes come in 10 % steps, and every pixel the box moves relative to the skin moves
the skin regions over brows, hair and backdrop: on a dark face in front of a bright wall
0.1 px of box error in the pulse band moves the whole-face mean as much as the pulse. So
between detections, and for as long as it fits, the box follows a template of the face cut
at the first detection (the keyframe), aligned to each frame by Lucas-Kanade on a downscaled,
lightly blurred frame (:mod:`pulseloop.vitals.align`): its error stays near 0.01 px and does
not accumulate. The box keeps the keyframe's placement on the face for the whole scan; its
size follows the aligned scale, smoothed over ``SCALE_SMOOTH_S`` (a face comes closer
slowly; the frame-to-frame scale estimate is the noisiest of the three). Detections are
then checks: a box that the detector keeps placing elsewhere (``DRIFT_FRACTION``) or at
another size (``DRIFT_SCALE``) has lost the face and is re-placed, and a template that no
longer fits (the face turned) is cut again at the current box, which does not move it.
A face that neither the detector nor the template finds for ``max_hold_s``, or a new box
that no second detection confirms within ``CONFIRM_S``, is lost.
Measured on the 640x480 Fitzpatrick VI fairness scans: box error in the pulse band 0.006-
0.016 px (was 0.09-0.11 px), and all twelve accepted (were nine).

Contrast normalisation. Haar features are luma differences, and a dark face in a bright
room has a fraction of a light face's contrast: lower reflectance, not different features.
So the window search around the last face runs on the histogram-equalised window, which
gives every face the same dynamic range (without it that search missed 95 % of its
detections on dim Fitzpatrick VI faces, and the scan ended ``face_lost``). The full-frame
search tries the raw frame first and the equalised one only when that finds nothing, with
a stricter vote: equalising a plain backdrop brings out face-like texture.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from pulseloop.vitals.align import Alignment, KeyframeAligner
from pulseloop.vitals.errors import VitalsError

FloatArray = npt.NDArray[np.float64]

_CASCADE = "haarcascade_frontalface_default.xml"
SEARCH_SIDE_PX = 240  # full-frame searches run on an image this tall (or wide)
ROI_FACE_PX = 48  # window searches rescale so the face is about this wide
DETECT_EVERY = 15  # frames between detections (the template follows the face in between)
MIN_FACE_FRACTION = 0.12  # faces narrower than this share of the frame are ignored
EQUALISED_NEIGHBOURS = 6  # Haar votes a face needs in an equalised full-frame search
NEAR_NEIGHBOURS = 5  # ... and in the (always equalised) window around the last face
# The template: the inner face (brows to chin, inside the cheeks), where the face's own
# features are and the backdrop is not; aligned on a frame downscaled (by a whole factor,
# so the pixel grid stays the same) until the face is about ALIGN_FACE_PX wide.
TEMPLATE_FRACTIONS = (0.15, 0.10, 0.85, 0.90)
ALIGN_FACE_PX = 96
ALIGN_BLUR_PX = 1.0  # Gaussian sigma on the downscaled frame: sensor noise off, features on
ALIGN_MARGIN = 0.5  # face widths around the box that are downscaled (room for movement)
SCALE_SMOOTH_S = 1.0
MIN_MATCH = 0.5  # below this correlation the template no longer shows the face
REKEY_MATCH = 0.8  # below this (and above MIN_MATCH) the template is cut again
DRIFT_FRACTION = 0.2  # a detection this far (in face widths) from the box disagrees...
DRIFT_SCALE = 1.25  # ... or one this much larger or smaller
DRIFT_DETECTIONS = 3  # disagreeing detections in a row that re-place the box
# A template follows whatever it was cut on, a false detection on the wall too: a new box
# that no later detection confirms within this time is dropped. (Once confirmed, the face
# may go undetected for longer while the template fits: a flickering Fitzpatrick VI face
# went 3 s without a detection.)
CONFIRM_S = 1.0


def _load_cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / _CASCADE  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise VitalsError(
            f"the OpenCV face model {path} is missing; reinstall with "
            "pip install 'pulseloop[vitals]' (opencv-python-headless 4.x ships it)"
        )
    return cascade


class FaceDetector:
    """OpenCV's Haar cascade: a full-frame search and a search around a known face."""

    def __init__(self) -> None:
        self._cascade = _load_cascade()

    def _search(
        self,
        gray: npt.NDArray[np.uint8],
        scale: float,
        min_px: int,
        max_px: int,
        equalise: bool = True,
        min_neighbours: int = 4,
    ) -> list[FloatArray]:
        small = (
            gray
            if scale == 1.0
            else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        if equalise:
            small = cv2.equalizeHist(small)
        found = self._cascade.detectMultiScale(
            small,
            scaleFactor=1.1,
            minNeighbors=min_neighbours,
            minSize=(min_px, min_px),
            maxSize=(max_px, max_px),
        )
        return [np.asarray(b, dtype=np.float64) / scale for b in found]

    def full(self, gray: npt.NDArray[np.uint8]) -> FloatArray | None:
        """The largest face in the frame, or None."""
        h, w = gray.shape
        scale = min(1.0, SEARCH_SIDE_PX / min(h, w))
        min_px = max(int(MIN_FACE_FRACTION * min(h, w) * scale), 20)
        max_px = int(min(h, w) * scale)
        boxes = self._search(gray, scale, min_px, max_px, equalise=False)
        if not boxes:
            # Contrast normalisation (see the module docstring), with a stricter vote: an
            # equalised backdrop shows face-like texture that the raw one does not.
            boxes = self._search(gray, scale, min_px, max_px, min_neighbours=EQUALISED_NEIGHBOURS)
        return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None

    def near(self, gray: npt.NDArray[np.uint8], last: FloatArray) -> FloatArray | None:
        """The face nearest to box ``last`` in a window around it, or None."""
        h, w = gray.shape
        x, y, bw, bh = last
        pad = 0.45 * bw
        x0, y0 = int(max(x - pad, 0)), int(max(y - pad, 0))
        x1, y1 = int(min(x + bw + pad, w)), int(min(y + bh + pad, h))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return None
        scale = min(1.0, ROI_FACE_PX / bw)
        expected_px = bw * scale
        window = gray[y0:y1, x0:x1]
        sizes = (int(0.7 * expected_px), int(1.4 * expected_px) + 1)
        boxes = self._search(window, scale, *sizes, min_neighbours=NEAR_NEIGHBOURS)
        if not boxes:
            return None
        offset = np.array([x0, y0, 0.0, 0.0])
        centre = last[:2] + last[2:] / 2

        def distance(b: FloatArray) -> float:
            return float(np.linalg.norm(b[:2] + b[2:] / 2 + offset[:2] - centre))

        return np.asarray(min(boxes, key=distance) + offset, dtype=np.float64)

    def place(self, gray: npt.NDArray[np.uint8]) -> FloatArray | None:
        """A face found in the whole frame, re-measured by the window search.

        The window search sees the face at another scale than the full-frame one, and its
        boxes are systematically larger: the box is placed with the search that checks it.
        A face the window search does not confirm is not placed (equalised backdrops show
        face-like texture to one search or the other, rarely to both).
        """
        found = self.full(gray)
        return None if found is None else self.near(gray, found)


class FaceTracker:
    """Detect a face, then follow it by template alignment; detections check the box."""

    def __init__(
        self, fps: float, detect_every: int = DETECT_EVERY, max_hold_s: float = 0.5
    ) -> None:
        self._detector = FaceDetector()
        self.detect_every = max(detect_every, 1)
        self._max_hold = max(round(max_hold_s * fps), 1)
        self._max_unconfirmed = max(round(CONFIRM_S * fps), self._max_hold)
        self._scale_gain = min(1.0, 1.0 / max(SCALE_SMOOTH_S * fps, 1.0))
        self._box: FloatArray | None = None
        self._key_box = np.zeros(4)
        self._aligner: KeyframeAligner | None = None
        self._factor = 1  # the frame is downscaled by this whole factor for alignment
        self._scale = 1.0  # the smoothed aligned scale
        self._count = 0
        self._last_seen = 0  # the frame of the last detection
        self._keyed_at = 0  # the frame the template was cut at
        self._confirmed = False  # a detection since the box was placed agreed it is a face
        # At most one new template a second: cutting one every frame would turn the tracker
        # back into a frame-to-frame one, whose errors add up (a random walk).
        self._rekey_after = max(round(fps), 1)
        self._drift = 0

    def _small(
        self, gray: npt.NDArray[np.uint8], box: FloatArray
    ) -> tuple[npt.NDArray[np.float32], FloatArray]:
        """The area around ``box``, downscaled and blurred, and its origin in downscaled px.

        The crop's corner is on a multiple of the factor, so every frame's downscaled
        pixels cover the same full pixels (the grid the template was cut on).
        """
        h, w = gray.shape
        k = self._factor
        margin = ALIGN_MARGIN * float(box[2])
        x0 = max(int((box[0] - margin) // k) * k, 0)
        y0 = max(int((box[1] - margin) // k) * k, 0)
        x1 = min(int(np.ceil((box[0] + box[2] + margin) / k)) * k, w - w % k)
        y1 = min(int(np.ceil((box[1] + box[3] + margin) / k)) * k, h - h % k)
        if x1 - x0 < 4 * k or y1 - y0 < 4 * k:  # the box left the frame: use all of it
            x0, y0, x1, y1 = 0, 0, w - w % k, h - h % k
        crop = gray[y0:y1, x0:x1]
        size = ((x1 - x0) // k, (y1 - y0) // k)
        small = crop if k == 1 else cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        blurred = cv2.GaussianBlur(small.astype(np.float32), (0, 0), ALIGN_BLUR_PX)
        return np.asarray(blurred, dtype=np.float32), np.array([x0 / k, y0 / k])

    def _template_rect(self, box: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Centre and size of the template inside ``box``, in downscaled pixels."""
        a, b, c, d = TEMPLATE_FRACTIONS
        x, y, w, h = box
        centre = np.array([x + (a + c) / 2 * w, y + (b + d) / 2 * h])
        size = np.array([(c - a) * w, (d - b) * h])
        # A downscaled pixel i covers full pixels [k i, k (i + 1)): centre k i + (k - 1) / 2.
        return (centre - (self._factor - 1) / 2) / self._factor, size / self._factor

    def _key(self, gray: npt.NDArray[np.uint8], box: FloatArray) -> None:
        """Cut the template at ``box`` in this frame; the box keeps its place."""
        self._factor = max(1, round(float(box[2]) / ALIGN_FACE_PX))
        centre, size = self._template_rect(box)
        image, origin = self._small(gray, box)
        self._aligner = KeyframeAligner(image, centre, size, origin)
        self._key_box = box.copy()
        self._scale = 1.0
        self._keyed_at = self._count

    def _follow(self, gray: npt.NDArray[np.uint8]) -> Alignment | None:
        """Move the box with the face; None when the template no longer fits."""
        assert self._aligner is not None and self._box is not None
        found = self._aligner.align(*self._small(gray, self._box))
        if found.match < MIN_MATCH:
            return None
        self._scale += self._scale_gain * (found.scale - self._scale)
        a, b, c, d = TEMPLATE_FRACTIONS
        key = self._key_box
        inner = np.array([((a + c) / 2 - 0.5) * key[2], ((b + d) / 2 - 0.5) * key[3]])
        # The template centre moved by the aligned shift; the box centre sits at a fixed
        # (scaled) offset from it.
        centre = key[:2] + key[2:] / 2 + inner + found.shift * self._factor - inner * self._scale
        size = key[2:] * self._scale
        self._box = np.concatenate([centre - size / 2, size])
        return found

    def _check(self, gray: npt.NDArray[np.uint8], fits: bool) -> None:
        """Detection every few frames: confirm, re-place or drop the box."""
        found = (
            self._detector.near(gray, self._box)
            if self._box is not None
            else self._detector.place(gray)
        )
        if found is None:
            unseen = self._count - self._last_seen
            unconfirmed = not self._confirmed and unseen > self._max_unconfirmed
            if unconfirmed or (not fits and unseen > self._max_hold):
                self._box, self._aligner = None, None
            return
        self._last_seen = self._count
        if self._box is None:
            self._box = found
            self._key(gray, found)
            self._confirmed = False
            return
        self._confirmed = True
        apart = np.linalg.norm((found[:2] + found[2:] / 2) - (self._box[:2] + self._box[2:] / 2))
        ratio = float(found[2] / self._box[2])
        drifted = apart > DRIFT_FRACTION * self._box[2] or not 1 / DRIFT_SCALE < ratio < DRIFT_SCALE
        self._drift = self._drift + 1 if drifted else 0
        if self._drift >= DRIFT_DETECTIONS or not fits:
            self._drift = 0
            self._box = found
            self._key(gray, found)

    def track(self, gray: npt.NDArray[np.uint8]) -> FloatArray | None:
        """The face box ``[x, y, w, h]`` in this frame, or None when no face is followed."""
        index = self._count
        self._count += 1
        fits = False
        if self._box is not None and self._aligner is not None:
            found = self._follow(gray)
            fits = found is not None
            if (
                found is not None
                and found.match < REKEY_MATCH
                and self._count - self._keyed_at > self._rekey_after
            ):
                self._key(gray, self._box)  # the face changed: a new template, same place
        # A template that lost the face asks the detector at once, not at the next turn.
        lost_template = self._box is not None and not fits
        if index % self.detect_every == 0 or lost_template:
            self._check(gray, fits)
        return None if self._box is None else self._box.copy()
