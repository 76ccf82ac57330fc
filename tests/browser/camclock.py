"""How fast Chromium's fake camera really played the file, measured from inside the page.

Chromium's file-backed fake camera (``--use-file-for-fake-video-capture``) delivers every
frame of the file in order, but under CPU starvation it delivers them late and stamps each
with the wall clock at delivery: the file's content then plays slower than the page's
clock says, and the pulse in it looks slower (measured at load 5-21: 0.991-0.998 x
nominal; a 67.6 bpm reading for a true 72, seen once at load ~10, would need ~0.94). A real
camera cannot do that: its frames
are the present. So a browser test must compare the reading with the heart rate the page
was actually shown, ``true_bpm x content_fps / nominal_fps``, or it tests the machine's
load instead of the scan.

The videos carry a frame counter (:mod:`pulseloop.vitals.synthetic.stamp`). ``PROBE_JS``,
added to the page as an init script (the product does not know about it), reads the counter
on every frame the page's video element presents, with the frame's ``captureTime`` (the
clock the page's trace uses); ``CameraClock.measure`` turns those records into the content
rate over the capture window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pulseloop.vitals.synthetic.stamp import SQUARE_PX, STAMP_BITS, decode_squares

PROBE_JS = f"""
(() => {{
  const SQUARES = {STAMP_BITS + 2}, PX = {SQUARE_PX};
  const W = SQUARES * PX, H = PX;
  const records = [];
  window.__pulseloopCameraClock = records;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  const watched = new WeakSet();
  function watch(video) {{
    if (watched.has(video)) return;
    watched.add(video);
    const context = canvas.getContext("2d", {{ willReadFrequently: true, alpha: false }});
    const onFrame = (now, meta) => {{
      if (video.videoWidth >= W) {{
        context.drawImage(video, 0, 0, W, H, 0, 0, W, H);
        const data = context.getImageData(0, 0, W, H).data;
        const levels = [];
        for (let i = 0; i < SQUARES; i++) {{
          const o = ((PX >> 1) * W + i * PX + (PX >> 1)) * 4;
          levels.push((data[o] + data[o + 1] + data[o + 2]) / 3);
        }}
        const t = typeof meta.captureTime === "number" && meta.captureTime > 0
          ? meta.captureTime : meta.mediaTime * 1000;
        records.push([t, levels]);
      }}
      video.requestVideoFrameCallback(onFrame);
    }};
    video.requestVideoFrameCallback(onFrame);
  }}
  setInterval(() => document.querySelectorAll("video").forEach(watch), 100);
}})();
"""


@dataclass(frozen=True, slots=True)
class CameraClock:
    """The fake camera's delivery over a window, against the page's frame clock."""

    content_fps: float  # file frames advanced per second of the page's clock
    delivered_fps: float  # frames the page saw per second of its clock
    skipped: int  # file frames never delivered (index jumped by more than one)
    repeated: int  # frames delivered twice (index did not move)
    interval_ms: tuple[float, float, float]  # median, 95th percentile, longest frame gap

    def rate(self, nominal_fps: float) -> float:
        """Content played per second of wall clock: 1.0 is real time."""
        return self.content_fps / nominal_fps

    @classmethod
    def measure(cls, records: list[list[Any]], file_frames: int, window_s: float) -> CameraClock:
        """From the probe's ``[t_ms, levels]`` records, over the last ``window_s`` seconds.

        The file loops, so the counter wraps at ``file_frames``; it is unwrapped assuming the
        camera never skips half a file between two frames.
        """
        decoded = [(float(t), decode_squares(levels)) for t, levels in records]
        stamped = [(t, i) for t, i in decoded if i is not None]
        if len(stamped) < 2:
            raise AssertionError(f"the page showed {len(stamped)} stamped frames; is the probe on?")
        t = np.array([s[0] for s in stamped])
        index = np.array([s[1] for s in stamped], dtype=np.int64)
        step = np.diff(index)
        step[step < -file_frames // 2] += file_frames  # the loop's seam
        unwrapped = np.concatenate([[0], np.cumsum(step)])
        keep = t >= t[-1] - window_s * 1000.0
        t, unwrapped, step = t[keep], unwrapped[keep], np.diff(unwrapped[keep])
        span_s = (t[-1] - t[0]) / 1000.0
        gaps = np.diff(t)
        return cls(
            content_fps=float(unwrapped[-1] - unwrapped[0]) / float(span_s),
            delivered_fps=(len(t) - 1) / float(span_s),
            skipped=int(np.sum(np.maximum(step - 1, 0))),
            repeated=int(np.sum(step == 0)),
            interval_ms=(
                float(np.median(gaps)),
                float(np.percentile(gaps, 95)),
                float(np.max(gaps)),
            ),
        )
