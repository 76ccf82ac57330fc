"""The colour trace: per-frame mean skin colours, the one input every analysis works on.

The patient's browser uploads a trace (it never uploads the video: compression destroys the
0.1-1 % colour change the pulse makes), and a video file is turned into the same trace by
:mod:`pulseloop.vitals.video`. The JSON schema (version 2, documented in ``docs/vitals.md``)::

    {"version": 2, "frame_width": 640, "frame_height": 480, "user_agent": "Mozilla/5.0 ...",
     "camera": {"exposure_mode": "manual", "white_balance_mode": null},
     "frames": [{"t_ms": 0.0,
                 "regions": {"forehead": [r, g, b], "left_cheek": [r, g, b],
                             "right_cheek": [r, g, b], "full_face": [r, g, b]},
                 "face": [x, y, w, h], "detection": [x, y, w, h], "shift": [dx, dy]},
                {"t_ms": 33.4, "regions": null, "face": null, "detection": null,
                 "shift": null}, ...]}

Colours are mean sRGB values in 0-255 (floats; keep the decimals, they carry the pulse);
``t_ms`` is the capture time of the frame, strictly increasing; ``face`` is the box the
regions were sampled with, in pixels of the ``frame_width`` x ``frame_height`` frame. A
frame without a face has both ``regions`` and ``face`` null. ``detection`` (version 2) is
the face detector's own box on the frames it looked at, before any smoothing: a page
smooths the sampling box, which hides the head motion the analysis must see. ``shift``
(version 2) is the face's own displacement in pixels since the first frame, measured by
the page on every frame from the face's pixels (detectors run too seldom to show a sway),
null on frames without a face. ``camera`` holds the exposure and white-balance modes the
camera reported. Version 1 (no ``camera``, ``detection`` or ``shift``) is still accepted.

Array shapes of :class:`Trace`: ``t_ms (n_frames,)``, ``rgb (n_frames, 4 regions, 3)``,
``face (n_frames, 4)``, ``detection (n_frames, 4)`` and ``shift (n_frames, 2)`` or None
(unknown: version 1, video); frames without a face, a detection or a shift hold NaN rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pulseloop.vitals.errors import TraceInvalid

TRACE_SCHEMA_VERSION = 2  # the version written; every version in READ_VERSIONS is read
READ_VERSIONS = (1, 2)
CAMERA_MODES = ("none", "manual", "single-shot", "continuous")  # MediaTrackSettings' values
REGION_NAMES: tuple[str, ...] = ("forehead", "left_cheek", "right_cheek", "full_face")
MIN_FRAMES = 30
MAX_FRAMES = 7_200  # 120 s at 60 fps
MAX_TRACE_BYTES = 4 * 1024 * 1024
MAX_FRAME_SIDE_PX = 8_192
MAX_USER_AGENT_CHARS = 1_024
MAX_DURATION_S = 180.0  # a scan is 30-60 s; longer spans are refused before any resampling
MAX_INT_DIGITS = 24  # no field needs more; Python refuses to parse over 4,300 anyway

_TOP_KEYS = {1: {"version", "frame_width", "frame_height", "user_agent", "frames"}}
_TOP_KEYS[2] = _TOP_KEYS[1] | {"camera"}
_FRAME_KEYS = {1: {"t_ms", "regions", "face"}}
_FRAME_KEYS[2] = _FRAME_KEYS[1] | {"detection", "shift"}
_CAMERA_KEYS = {"exposure_mode", "white_balance_mode"}

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CameraModes:
    """Exposure and white-balance modes the camera reported (None: not reported)."""

    exposure_mode: str | None = None
    white_balance_mode: str | None = None

    @property
    def exposure_locked(self) -> bool | None:
        """True when exposure was fixed while filming; None when the camera did not say."""
        return None if self.exposure_mode is None else self.exposure_mode == "manual"


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """A validated colour trace; NaN rows mark frames without a face."""

    t_ms: FloatArray
    rgb: FloatArray
    face: FloatArray
    frame_width: int
    frame_height: int
    user_agent: str = ""
    source: str = field(default="trace")
    # Whole-frame mean luma (0-255), known only for videos: it tells "too dark to see a
    # face" from "no face". Not part of the upload schema.
    scene_brightness: float | None = None
    # The detector's raw boxes (version 2): NaN rows on frames it did not look at.
    detection: FloatArray | None = None
    shift: FloatArray | None = None
    camera: CameraModes | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames, with or without a face."""
        return int(self.t_ms.shape[0])

    @property
    def face_found(self) -> npt.NDArray[np.bool_]:
        """``(n_frames,)`` True where the frame has a face and skin colours."""
        return np.asarray(np.isfinite(self.rgb).all(axis=(1, 2)), dtype=np.bool_)

    def to_json(self) -> dict[str, Any]:
        """The trace as schema JSON: version 2 when it has detector boxes or face shifts,
        else version 1."""
        version = 1 if self.detection is None and self.shift is None else 2
        frames: list[dict[str, Any]] = []
        found = self.face_found
        for i in range(self.n_frames):
            if found[i]:
                regions: dict[str, list[float]] | None = {
                    name: [round(float(v), 4) for v in self.rgb[i, k]]
                    for k, name in enumerate(REGION_NAMES)
                }
                face: list[float] | None = [round(float(v), 2) for v in self.face[i]]
            else:
                regions, face = None, None
            frame = {"t_ms": round(float(self.t_ms[i]), 3), "regions": regions, "face": face}
            if version == 2:
                detection = None if self.detection is None else _rounded(self.detection[i], 2)
                frame["detection"] = detection
                frame["shift"] = None if self.shift is None else _rounded(self.shift[i], 3)
            frames.append(frame)
        top: dict[str, Any] = {
            "version": version,
            "frame_width": self.frame_width,
            "frame_height": self.frame_height,
            "user_agent": self.user_agent,
        }
        if version == 2:
            camera = self.camera or CameraModes()
            top["camera"] = {
                "exposure_mode": camera.exposure_mode,
                "white_balance_mode": camera.white_balance_mode,
            }
        return {**top, "frames": frames}


def _rounded(values: FloatArray, digits: int) -> list[float] | None:
    return [round(float(v), digits) for v in values] if np.isfinite(values).all() else None


def _reject_constant(name: str) -> float:
    raise TraceInvalid("$", f"contains {name}, which is not valid JSON; send finite numbers")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise TraceInvalid("$", f"contains a {len(text)}-digit integer; send plain numbers")
    return int(text)


def _load(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if not isinstance(data, (bytes, str)):
        raise TraceInvalid("$", f"is a {type(data).__name__}, expected JSON bytes, str or dict")
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_TRACE_BYTES:
        raise TraceInvalid("$", f"is {size} bytes, over the {MAX_TRACE_BYTES}-byte limit")
    try:
        loaded = json.loads(data, parse_constant=_reject_constant, parse_int=_parse_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceInvalid("$", f"is not valid JSON ({exc})") from exc
    except TraceInvalid:
        raise
    except RecursionError as exc:
        # The schema is three levels deep; a deeper document is not a trace.
        raise TraceInvalid("$", "is nested too deeply to be a trace") from exc
    except ValueError as exc:  # e.g. Python's limit on integer digits
        raise TraceInvalid("$", f"holds a number that cannot be read ({exc})") from exc
    if not isinstance(loaded, dict):
        raise TraceInvalid("$", f"is a JSON {type(loaded).__name__}, expected an object")
    return loaded


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TraceInvalid(where, f"is {_short(value)}, expected a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise TraceInvalid(where, "is a number out of range") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise TraceInvalid(where, f"is {value!r}, expected a finite number in [{low}, {high}]")
    return number


def _short(value: Any) -> str:
    """``repr`` cut to a readable length (a 5,000-digit number stays out of the message)."""
    text = (
        repr(value)
        if not isinstance(value, int) or abs(value) < 10**MAX_INT_DIGITS
        else "a huge integer"
    )
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TraceInvalid(where, f"is {_short(value)}, expected an integer in [{low}, {high}]")
    return value


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    missing = sorted(allowed - obj.keys())
    if missing:
        raise TraceInvalid(f"{where}.{missing[0]}" if where else missing[0], "is missing")
    extra = sorted(obj.keys() - allowed)
    if extra:
        prefix = f"{where}." if where else ""
        raise TraceInvalid(f"{prefix}{extra[0]}", "is not part of the schema")


def _box(value: Any, where: str, out: FloatArray, width: int, height: int) -> None:
    if not isinstance(value, list) or len(value) != 4:
        raise TraceInvalid(where, f"is {_short(value)}, expected [x, y, w, h] or null")
    side = float(max(width, height))
    for c, name in enumerate(("x", "y", "w", "h")):
        low = 1.0 if name in ("w", "h") else -side
        out[c] = _number(value[c], f"{where}[{c}] ({name})", low, 2 * side)


def _camera(value: Any) -> CameraModes:
    if not isinstance(value, dict):
        raise TraceInvalid("camera", f"is {_short(value)}, expected an object")
    _check_keys(value, _CAMERA_KEYS, "camera")
    modes: list[str | None] = []
    for key in ("exposure_mode", "white_balance_mode"):
        mode = value[key]
        if mode is not None and mode not in CAMERA_MODES:
            raise TraceInvalid(f"camera.{key}", f"is {_short(mode)}, expected one of "
                               f"{', '.join(CAMERA_MODES)} or null")  # fmt: skip
        modes.append(mode)
    return CameraModes(*modes)


def _parse_motion(raw: dict[str, Any], where: str, out: FloatArray, side: int) -> None:
    """A version-2 frame's ``detection`` box and ``shift`` into ``out[:4]`` and ``out[4:]``."""
    if raw["detection"] is not None:
        # Independent of regions: the detector can see a face whose regions fall off-frame.
        _box(raw["detection"], f"{where}.detection", out[:4], side, side)
    shift = raw["shift"]
    if shift is None:
        return
    if not isinstance(shift, list) or len(shift) != 2:
        raise TraceInvalid(f"{where}.shift", f"is {_short(shift)}, expected [dx, dy] or null")
    for c in range(2):
        out[4 + c] = _number(shift[c], f"{where}.shift[{c}]", -float(side), float(side))


def _parse_frame(
    raw: Any, i: int, out: tuple[FloatArray, FloatArray, FloatArray | None], size: tuple[int, int]
) -> float:
    where = f"frames[{i}]"
    out_rgb, out_face, out_motion = out
    width, height = size
    if not isinstance(raw, dict):
        raise TraceInvalid(where, f"is {type(raw).__name__}, expected an object")
    _check_keys(raw, _FRAME_KEYS[1 if out_motion is None else 2], where)
    t_ms = _number(raw["t_ms"], f"{where}.t_ms", 0.0, 1e9)
    if out_motion is not None:
        _parse_motion(raw, where, out_motion[i], max(width, height))
    regions, face = raw["regions"], raw["face"]
    if (regions is None) != (face is None):
        raise TraceInvalid(f"{where}.regions", "and face must both be null or both be set")
    if regions is None:
        return t_ms
    if not isinstance(regions, dict):
        raise TraceInvalid(f"{where}.regions", f"is {regions!r}, expected an object or null")
    _check_keys(regions, set(REGION_NAMES), f"{where}.regions")
    for k, name in enumerate(REGION_NAMES):
        colour = regions[name]
        if not isinstance(colour, list) or len(colour) != 3:
            raise TraceInvalid(f"{where}.regions.{name}", f"is {colour!r}, expected [r, g, b]")
        for c in range(3):
            out_rgb[i, k, c] = _number(colour[c], f"{where}.regions.{name}[{c}]", 0.0, 255.0)
    _box(face, f"{where}.face", out_face[i], width, height)
    return t_ms


def parse_trace(data: bytes | str | dict[str, Any]) -> Trace:
    """Validate an uploaded trace and return it as arrays.

    Raises :class:`TraceInvalid` naming the first bad field: wrong version, unknown or
    missing keys, NaN/out-of-range numbers, non-increasing timestamps, fewer than
    ``MIN_FRAMES`` or more than ``MAX_FRAMES`` frames, or more than ``MAX_TRACE_BYTES``.
    """
    obj = _load(data)
    version = obj.get("version")
    # bool is an int in Python (True == 1): a JSON true is not version 1.
    if isinstance(version, bool) or not isinstance(version, int) or version not in READ_VERSIONS:
        raise TraceInvalid(
            "version",
            f"is {_short(version)}; this server reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}",
        )
    _check_keys(obj, _TOP_KEYS[version], "")
    camera = _camera(obj["camera"]) if version >= 2 else None
    width = _integer(obj["frame_width"], "frame_width", 16, MAX_FRAME_SIDE_PX)
    height = _integer(obj["frame_height"], "frame_height", 16, MAX_FRAME_SIDE_PX)
    user_agent = obj["user_agent"]
    if not isinstance(user_agent, str) or len(user_agent) > MAX_USER_AGENT_CHARS:
        raise TraceInvalid("user_agent", f"must be a string of at most {MAX_USER_AGENT_CHARS}")
    frames = obj["frames"]
    if not isinstance(frames, list):
        raise TraceInvalid("frames", f"is {type(frames).__name__}, expected a list")
    if not MIN_FRAMES <= len(frames) <= MAX_FRAMES:
        raise TraceInvalid(
            "frames", f"has {len(frames)} frames, expected {MIN_FRAMES} to {MAX_FRAMES}"
        )
    n = len(frames)
    t_ms = np.empty(n, dtype=np.float64)
    rgb = np.full((n, len(REGION_NAMES), 3), np.nan, dtype=np.float64)
    face = np.full((n, 4), np.nan, dtype=np.float64)
    # Version 2: each frame's detector box (4) and shift (2), NaN where null.
    motion = np.full((n, 6), np.nan, dtype=np.float64) if version >= 2 else None
    for i, raw in enumerate(frames):
        t_ms[i] = _parse_frame(raw, i, (rgb, face, motion), (width, height))
        if i and t_ms[i] <= t_ms[i - 1]:
            raise TraceInvalid(
                f"frames[{i}].t_ms",
                f"is {t_ms[i]:g}, not after the previous frame's {t_ms[i - 1]:g}",
            )
        if t_ms[i] - t_ms[0] > MAX_DURATION_S * 1000.0:
            # Checked frame by frame, before anything is sized by the span: the analysis
            # resamples on a grid as long as the span.
            raise TraceInvalid(
                f"frames[{i}].t_ms",
                f"is {t_ms[i] - t_ms[0]:g} ms after the first frame; a trace spans at most "
                f"{MAX_DURATION_S:g} s",
            )
    if motion is None:
        return Trace(t_ms, rgb, face, width, height, user_agent)
    return Trace(
        t_ms,
        rgb,
        face,
        width,
        height,
        user_agent,
        detection=np.ascontiguousarray(motion[:, :4]),
        shift=np.ascontiguousarray(motion[:, 4:]),
        camera=camera,
    )
