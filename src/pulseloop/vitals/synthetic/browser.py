"""The face box a browser scan page would have used: detected now and then, glided, lagging.

Shapes: ``BrowserBoxes.next(t_s, true_box (4,) or None) -> (4,) or None``, one call per frame.

The scan page (``capture.js``, ``docs/scan-page.md``) runs a face detector as often as a
time budget allows (every ~120 ms here), ignores target moves smaller than a dead band,
and glides the box it samples the regions from towards the last detection by a fixed share
per frame. So under head motion the box lags the face and the regions slide over it: the
artefact the server must recognise from the box trajectory. Detector jitter (a share of the
face width) is added to each detection. Constants mirror ``capture.js``.
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
        self._target: FloatArray | None = None
        self._box: FloatArray | None = None
        self._next_detection_s = 0.0

    def next(self, t_s: float, true_box: FloatArray | None) -> FloatArray | None:
        """The box the page samples this frame with (None: no face)."""
        if t_s >= self._next_detection_s:
            self._next_detection_s = t_s + DETECT_EVERY_S
            if true_box is None:
                self._target = self._box = None
            else:
                found = true_box + self._rng.normal(0.0, DETECT_JITTER * true_box[2], 4)
                target = self._target
                if target is None or np.max(np.abs(found - target)) / target[2] > BOX_DEADBAND:
                    self._target = found
                if self._box is None or target is None:
                    self._box = found.copy()
        if self._box is None or self._target is None:
            return None
        self._box = self._box + BOX_GLIDE * (self._target - self._box)
        return self._box.copy()
