"""Decode a video file as a stream and turn it into a colour trace.

Shapes: per decoded frame ``YUV 4:2:0 planes`` -> one trace row ``(4 regions, 3)`` RGB;
``trace_from_video(path) -> Trace``.

Frames are decoded one at a time with PyAV (WebM VP8/VP9, MP4 H.264, Y4M, anything FFmpeg
reads) and dropped after their skin means are taken (only the previous luma plane is kept,
for tracking), so memory stays bounded whatever the length. The
face search reads the luma plane and skin colours come from plane means
(:mod:`pulseloop.vitals.colour`), so no frame is ever converted to RGB. Each frame is timed
by its own pts: browser WebM has no duration or frame count, and frames arrive with gaps.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
import numpy.typing as npt

from pulseloop.vitals.colour import BT709_COLORSPACE, FULL_RANGE, YuvFrame, region_means_yuv
from pulseloop.vitals.errors import VideoUnreadable
from pulseloop.vitals.face import FaceTracker
from pulseloop.vitals.trace import MAX_FRAMES, MIN_FRAMES, REGION_NAMES, Trace

log = logging.getLogger(__name__)

_YUV420 = ("yuv420p", "yuvj420p")
PROGRESS_EVERY_FRAMES = 15
DECODE_THREADS = 2
DECODE_AHEAD = 8  # frames decoded ahead of the analysis (memory: 8 frames)

Progress = Callable[[int, int | None], None]


class VideoSource(Protocol):
    """A video that is not a plain file, e.g. a sealed upload
    (:class:`~pulseloop.store.sealed.reader.SealedVideo`): decoded from the seekable,
    read-only binary stream :meth:`open` returns, so its plaintext never touches disk."""

    @property
    def name(self) -> str:
        """What messages call it (a file name, never its content)."""

    def open(self) -> io.IOBase:
        """The video's bytes: a binary file object with ``read``, ``seek`` and ``tell``.
        If it has an ``error`` attribute, an exception there once decoding is done is
        raised (the decoder may have taken a failed read for the end of the file)."""


def _label(path: Path | VideoSource) -> str:
    return str(path) if isinstance(path, Path) else path.name


def _raise_read_error(file: Any) -> None:
    error = getattr(file, "error", None)
    if isinstance(error, BaseException):
        raise error


def _open(path: Path | VideoSource, stack: contextlib.ExitStack) -> Any:
    if isinstance(path, Path):
        if not path.is_file():
            raise VideoUnreadable(str(path), "no such file")
        target: Any = str(path)
    else:
        target = stack.enter_context(path.open())  # its errors are the source's own
        stack.callback(_raise_read_error, target)  # runs last: after the container closed
    try:
        return stack.enter_context(av.open(target, mode="r"))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoUnreadable(_label(path), f"not a video container ({exc})") from exc


def _yuv_frame(frame: Any) -> YuvFrame:
    """Zero-copy views of a frame's planes (converted to 4:2:0 first if needed)."""
    if frame.format.name not in _YUV420:
        frame = frame.reformat(format="yuv420p")
    planes = []
    for plane in frame.planes[:3]:
        buffer = np.frombuffer(plane, dtype=np.uint8)
        planes.append(buffer.reshape(plane.height, plane.line_size)[:, : plane.width])
    full_range = frame.color_range == FULL_RANGE or frame.format.name.startswith("yuvj")
    return YuvFrame(
        planes[0], planes[1], planes[2], frame.colorspace == BT709_COLORSPACE, full_range
    )


_DONE = object()


def _decoded(container: Any, stream: Any) -> Iterator[Any]:
    """The stream's frames, decoded in a background thread ``DECODE_AHEAD`` frames ahead.

    FFmpeg releases the GIL while it decodes, so the face search and colour means of one
    frame run while the next ones decode: on two cores a 30 s lossless H.264 file (decoding
    ~1.5 s of CPU) costs about the larger of the two instead of their sum. Errors from the
    decoder are raised here, in the consumer, after the frames decoded before them.
    """
    frames: queue.Queue[Any] = queue.Queue(maxsize=DECODE_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in container.decode(stream):
                while not stop.is_set():
                    try:
                        frames.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            frames.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            frames.put(exc)

    worker = threading.Thread(target=produce, name="pulseloop-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = frames.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


class _TraceBuilder:
    """Collects one trace row per frame: the tracked face box and its skin means."""

    def __init__(self, tracker: FaceTracker) -> None:
        self.tracker = tracker
        self.t_ms: list[float] = []
        self.rgb: list[npt.NDArray[np.float64]] = []
        self.face: list[npt.NDArray[np.float64]] = []
        self.luma_sum = 0.0

    def add(self, t_ms: float, frame: YuvFrame) -> None:
        self.t_ms.append(t_ms)
        luma = float(frame.y[::8, ::8].mean())
        self.luma_sum += luma if frame.full_range else (luma - 16.0) * 255.0 / 219.0
        box = self.tracker.track(frame.y)
        means = region_means_yuv(frame, box) if box is not None else None
        if box is None or means is None or not np.isfinite(means).all():
            self.rgb.append(np.full((len(REGION_NAMES), 3), np.nan))
            self.face.append(np.full(4, np.nan))
        else:
            self.rgb.append(means)
            self.face.append(box)


def trace_from_video(path: str | Path | VideoSource, progress: Progress | None = None) -> Trace:
    """Decode ``path`` (a file, or a :class:`VideoSource`), find the face in each frame,
    and return the skin-colour trace."""
    path = Path(path) if isinstance(path, str) else path
    label = _label(path)
    with contextlib.ExitStack() as stack:
        container = _open(path, stack)
        if not container.streams.video:
            raise VideoUnreadable(label, "the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = DECODE_THREADS
        total = int(stream.frames) or None
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        builder: _TraceBuilder | None = None
        width = height = 0
        last_ms = -1.0
        try:
            for index, frame in enumerate(_decoded(container, stream)):
                if index >= MAX_FRAMES:
                    raise VideoUnreadable(label, f"longer than {MAX_FRAMES} frames")
                when_ms = 1000.0 * (float(frame.time) if frame.time is not None else index / rate)
                if when_ms <= last_ms:
                    continue  # a repeated timestamp carries no new instant
                last_ms = when_ms
                width, height = frame.width, frame.height
                if builder is None:
                    builder = _TraceBuilder(FaceTracker(fps=rate))
                builder.add(when_ms, _yuv_frame(frame))
                if progress is not None and index % PROGRESS_EVERY_FRAMES == 0:
                    progress(index + 1, total)
        except av.FFmpegError as exc:
            if builder is None or len(builder.t_ms) < MIN_FRAMES:
                raise VideoUnreadable(label, f"corrupt video data ({exc})") from exc
            log.warning(
                "video %s is damaged after %d frames; analysing those", label, len(builder.t_ms)
            )
    n_frames = 0 if builder is None else len(builder.t_ms)
    if builder is None or n_frames < MIN_FRAMES:
        raise VideoUnreadable(
            label, f"only {n_frames} decodable frames, at least {MIN_FRAMES} are needed"
        )
    if progress is not None:
        progress(n_frames, n_frames)
    t_ms = np.asarray(builder.t_ms)
    return Trace(
        t_ms=t_ms - t_ms[0],
        rgb=np.asarray(builder.rgb),
        face=np.asarray(builder.face),
        frame_width=width,
        frame_height=height,
        user_agent=f"video:{path.name}",
        source="video",
        scene_brightness=builder.luma_sum / n_frames,
    )
