"""The face box a browser scan page would have used: detected now and then, following the face.

Shapes: ``BrowserBoxes.ahead() -> (4,) or None`` (where the regions were last frame: the
page reads the face's pixels there to measure its shift); ``BrowserBoxes.next(t_s,
true_box (4,) or None, shift (2,) or None) -> (4,) or None``, one call per frame;
``BrowserBoxes.detection`` the detector's raw box ``(4,)`` when it looked at this frame.

The scan page (``capture.js``, ``docs/scan-page.md``) runs a face detector as often as a
time budget allows (every ~120 ms here), and measures the face's shift on every frame
(``static/scan/face-shift.js``; :mod:`pulseloop.vitals.synthetic.shift` here). It samples
the regions with an *anchor* box moved by the frame's shift, so the regions stay on the
same skin as the face moves, as the video path's tracker keeps them. The anchor is where
the detector put the face, less the shift at that time: it glides towards each detection
by a fixed share per frame and ignores moves smaller than a dead band (detector jitter).
Detector jitter (a share of the face width) is added to each detection. Constants mirror
``capture.js``. The raw detection, before the dead band and the glide, is what the page
uploads as the frame's ``detection`` (trace version 2).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DETECT_EVERY_S = 0.12
DETECT_JITTER = 0.012  # detector noise, face widths (1 sigma)
BOX_GLIDE = 0.15
BOX_DEADBAND = 0.03


class BrowserBoxes:
    """Replays the page's box logic on the true face boxes of a rendered scan."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed + 7)
        self._target: FloatArray | None = None  # anchor coordinates (shift taken out)
        self._box: FloatArray | None = None  # anchor coordinates
        self._shift = np.zeros(4)
        self._next_detection_s = 0.0
        self.detection: FloatArray | None = None

    def ahead(self) -> FloatArray | None:
        """The box the regions had last frame (None: no face yet)."""
        return None if self._box is None else self._box + self._shift

    def next(
        self, t_s: float, true_box: FloatArray | None, shift: FloatArray | None = None
    ) -> FloatArray | None:
        """The box the page samples this frame with (None: no face)."""
        if shift is not None:
            self._shift = np.array([shift[0], shift[1], 0.0, 0.0])
        self.detection = None
        if t_s >= self._next_detection_s:
            self._next_detection_s = t_s + DETECT_EVERY_S
            if true_box is None:
                self._target = self._box = None
            else:
                found = true_box + self._rng.normal(0.0, DETECT_JITTER * true_box[2], 4)
                self.detection = found.copy()
                anchored = found - self._shift
                target = self._target
                if target is None or np.max(np.abs(anchored - target)) / target[2] > BOX_DEADBAND:
                    self._target = anchored
                if self._box is None or target is None:
                    self._box = anchored.copy()
        if self._box is None or self._target is None:
            return None
        self._box = self._box + BOX_GLIDE * (self._target - self._box)
        return self._box + self._shift
