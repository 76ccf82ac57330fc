"""Write rendered frames as Y4M (raw, what Chromium's fake camera reads), WebM or MP4.

Shapes: each frame ``rgb (height, width, 3) uint8`` with its capture time ``t_s``.

Y4M is written directly (no encoder): OpenCV's RGB -> I420 conversion is BT.601
limited-range 4:2:0, the colour space decoders assume when a file says nothing else, so
decoding gives back the same colours. It is
constant-rate by definition, so it cannot carry dropped frames. WebM (VP8/VP9) and MP4
(H.264) go through PyAV with each frame's pts in milliseconds, like a browser's
MediaRecorder, at a chosen bitrate (the knob that destroys the pulse).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.stream import VideoStream

Codec = Literal["raw", "vp8", "vp9", "h264", "h264_lossless"]
_ENCODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9", "h264": "libx264", "h264_lossless": "libx264"}
_CONTAINERS = {
    ".webm": ("vp8", "vp9"),
    ".mp4": ("h264", "h264_lossless"),
    ".mkv": ("vp8", "vp9", "h264", "h264_lossless"),
}


class Y4MWriter:
    """Minimal YUV4MPEG2 writer, 4:2:0, constant frame rate."""

    def __init__(self, out: BinaryIO, width: int, height: int, fps: float) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"Y4M 4:2:0 needs even frame sizes, got {width}x{height}")
        rate = Fraction(fps).limit_denominator(1001)
        out.write(
            f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} "
            "Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n".encode()
        )
        self._out = out

    def write(self, rgb: npt.NDArray[np.uint8]) -> None:
        """Append one RGB frame."""
        i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # Y 16-235, Cb/Cr 16-240
        self._out.write(b"FRAME\n")
        self._out.write(i420.tobytes())


def write_y4m(
    path: Path, frames: Iterable[npt.NDArray[np.uint8]], width: int, height: int, fps: float
) -> int:
    """Write frames to a Y4M file; returns the frame count."""
    count = 0
    with path.open("wb") as out:
        writer = Y4MWriter(out, width, height, fps)
        for rgb in frames:
            writer.write(rgb)
            count += 1
    return count


def write_encoded(
    path: Path,
    frames: Iterable[tuple[float, npt.NDArray[np.uint8]]],
    width: int,
    height: int,
    codec: Codec,
    bitrate_kbps: int,
) -> int:
    """Encode ``(t_s, rgb)`` frames with PyAV, timed by pts in ms; returns the frame count."""
    allowed = _CONTAINERS.get(path.suffix.lower(), ())
    if codec not in allowed:
        raise ValueError(f"codec {codec!r} cannot go in a {path.suffix!r} file; use {allowed}")
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(_ENCODERS[codec], rate=30)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.thread_count = 2
        if codec == "h264_lossless":
            stream.options = {"qp": "0", "preset": "ultrafast"}
        elif codec == "h264":
            stream.bit_rate = bitrate_kbps * 1000
            stream.options = {"preset": "veryfast"}
        else:
            stream.bit_rate = bitrate_kbps * 1000
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        last_pts = -1
        for t_s, rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = max(round(t_s * 1000), last_pts + 1)
            frame.time_base = Fraction(1, 1000)
            last_pts = frame.pts
            container.mux(stream.encode(frame))
            count += 1
        container.mux(stream.encode(None))
    return count
