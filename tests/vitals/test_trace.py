"""The trace schema: valid traces parse; every kind of malformed trace names its field."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from pulseloop.errors import PulseloopError
from pulseloop.vitals.errors import TraceInvalid
from pulseloop.vitals.resample import resample
from pulseloop.vitals.trace import (
    MAX_DURATION_S,
    MAX_TRACE_BYTES,
    MIN_FRAMES,
    TRACE_SCHEMA_VERSION,
    CameraModes,
    Trace,
    parse_trace,
)


def _valid(n: int = 40) -> dict[str, Any]:
    """A version-1 trace (what pages before version 2 upload; still accepted)."""
    frames: list[dict[str, Any]] = []
    for i in range(n):
        face = None if i == 5 else [100.0, 80.0, 120.0, 120.0]
        regions = (
            None
            if face is None
            else {
                "forehead": [180.0, 140.0, 110.0],
                "left_cheek": [200.5, 160.25, 130.0],
                "right_cheek": [199, 161, 129],
                "full_face": [170.0, 130.0, 105.5],
            }
        )
        frames.append({"t_ms": i * 33.3, "regions": regions, "face": face})
    return {
        "version": 1,
        "frame_width": 640,
        "frame_height": 480,
        "user_agent": "Mozilla/5.0 test",
        "frames": frames,
    }


def test_valid_trace_parses_from_dict_str_and_bytes() -> None:
    data = _valid()
    for form in (data, json.dumps(data), json.dumps(data).encode()):
        trace = parse_trace(form)
        assert trace.n_frames == 40
        assert trace.rgb.shape == (40, 4, 3)
        assert trace.face.shape == (40, 4)
        assert not trace.face_found[5]
        assert int(trace.face_found.sum()) == 39
        assert trace.rgb[0, 1].tolist() == [200.5, 160.25, 130.0]
        assert trace.frame_width == 640
        assert trace.user_agent == "Mozilla/5.0 test"


def test_to_json_round_trips() -> None:
    trace = parse_trace(_valid())
    again = parse_trace(json.dumps(trace.to_json()))
    assert np.allclose(again.t_ms, trace.t_ms)
    assert np.array_equal(np.isnan(again.rgb), np.isnan(trace.rgb))
    assert np.allclose(np.nan_to_num(again.rgb), np.nan_to_num(trace.rgb))


def _mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_valid())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(version=3), "version"),
        (lambda d: d.update(version=2), "camera"),  # a version-2 trace has version-2 keys
        (lambda d: d["frames"][9].update(detection=None), "frames[9].detection"),
        # bool is an int in Python (True == 1): JSON true must not pass as version 1.
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.update(version=1.0), "version"),
        (lambda d: d.update(frame_width=10**5000), "frame_width"),
        (lambda d: d["frames"][6].update(t_ms=10**400), "frames[6].t_ms"),
        (lambda d: d.pop("version"), "version"),
        (lambda d: d.pop("frame_width"), "frame_width"),
        (lambda d: d.update(frame_height=0), "frame_height"),
        (lambda d: d.update(user_agent=5), "user_agent"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(frames={}), "frames"),
        (lambda d: d.update(frames=d["frames"][: MIN_FRAMES - 1]), "frames"),
        (lambda d: d["frames"][3].update(t_ms=d["frames"][2]["t_ms"]), "frames[3].t_ms"),
        (lambda d: d["frames"][7].update(t_ms=-1), "frames[7].t_ms"),
        (lambda d: d["frames"][7].update(t_ms="7"), "frames[7].t_ms"),
        (lambda d: d["frames"][7].update(t_ms=True), "frames[7].t_ms"),
        (lambda d: d["frames"][8]["regions"].update(forehead=[1, 2]), "frames[8].regions.forehead"),
        (
            lambda d: d["frames"][8]["regions"]["left_cheek"].__setitem__(1, 300),
            "frames[8].regions.left_cheek[1]",
        ),
        (lambda d: d["frames"][8]["regions"].pop("right_cheek"), "frames[8].regions.right_cheek"),
        (lambda d: d["frames"][8]["regions"].update(chin=[1, 2, 3]), "frames[8].regions.chin"),
        (lambda d: d["frames"][9].update(face=None), "frames[9].regions"),
        (lambda d: d["frames"][9].update(face=[1, 2, 0, 4]), "frames[9].face[2] (w)"),
        (lambda d: d["frames"][9].pop("face"), "frames[9].face"),
        (lambda d: d["frames"].__setitem__(4, [1, 2]), "frames[4]"),
    ],
)
def test_malformed_trace_names_the_field(change: Any, field: str) -> None:
    with pytest.raises(TraceInvalid) as caught:
        parse_trace(_mutated(change))
    assert caught.value.field == field
    assert field in str(caught.value)
    assert caught.value.code == "trace_invalid"
    assert isinstance(caught.value, PulseloopError)


def test_nan_in_json_text_is_rejected() -> None:
    text = json.dumps(_valid()).replace("180.0", "NaN", 1)
    with pytest.raises(TraceInvalid, match="NaN"):
        parse_trace(text)


def test_nan_in_dict_is_rejected_with_its_field() -> None:
    data = _valid()
    data["frames"][0]["regions"]["forehead"][0] = float("nan")
    with pytest.raises(TraceInvalid) as caught:
        parse_trace(data)
    assert caught.value.field == "frames[0].regions.forehead[0]"


def test_oversized_payload_is_rejected_before_parsing() -> None:
    payload = b" " * (MAX_TRACE_BYTES + 1)
    with pytest.raises(TraceInvalid, match="limit") as caught:
        parse_trace(payload)
    assert caught.value.field == "$"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe", "null"])
def test_non_object_json_is_rejected(payload: bytes | str) -> None:
    with pytest.raises(TraceInvalid) as caught:
        parse_trace(payload)
    assert caught.value.field == "$"


def test_absurd_time_span_is_refused_before_any_grid_is_built() -> None:
    # 40 frames spanning 11 days would resample onto a 30 Hz grid of 3e7 points.
    data = _valid()
    data["frames"][-1]["t_ms"] = 1e9
    with pytest.raises(TraceInvalid) as caught:
        parse_trace(data)
    assert caught.value.field == f"frames[{len(data['frames']) - 1}].t_ms"
    assert f"{MAX_DURATION_S:g} s" in str(caught.value)


def test_a_trace_built_in_code_is_checked_before_resampling() -> None:
    n = 40
    t_ms = np.arange(n, dtype=np.float64) * 33.3
    t_ms[-1] = 1e9
    trace = Trace(
        t_ms=t_ms,
        rgb=np.full((n, 4, 3), 100.0),
        face=np.tile([100.0, 100.0, 120.0, 120.0], (n, 1)),
        frame_width=640,
        frame_height=480,
    )
    with pytest.raises(TraceInvalid, match="span"):
        resample(trace)


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"version": 1, "frames": ' + "[" * 50_000 + "]" * 50_000 + "}",
        json.dumps(_valid()).replace('"frame_width": 640', '"frame_width": ' + "7" * 5000),
        json.dumps(_valid()).replace('"t_ms": 33.3', '"t_ms": ' + "3" * 5000, 1),
        json.dumps(_valid()).replace('"t_ms": 33.3', '"t_ms": 3.' + "3" * 5000, 1),
        json.dumps(_valid()).replace('"t_ms": 33.3', '"t_ms": 1' + "0" * 5000 + ".0", 1),
    ],
    ids=["nested-list", "nested-frames", "5000-digit-int", "5000-digit-t_ms", "long-float", "inf"],
)
def test_hostile_numbers_and_nesting_are_invalid_not_a_crash(payload: str) -> None:
    try:
        parse_trace(payload)
    except TraceInvalid as caught:
        assert caught.field
        assert len(str(caught)) < 400  # a 5,000-digit number stays out of the message
    else:
        # A 5,000-digit decimal is just a float: accepted only if every value is in range.
        assert "3." in payload


def _valid_v2(n: int = 40) -> dict[str, Any]:
    """A version-2 trace: raw detector boxes on some frames, the face's shift on each."""
    data = _valid(n)
    data.update(
        version=TRACE_SCHEMA_VERSION,
        camera={"exposure_mode": "manual", "white_balance_mode": None},
    )
    for i, frame in enumerate(data["frames"]):
        frame["detection"] = [101.5, 79.0, 121.0, 119.5] if i % 4 == 0 else None
        frame["shift"] = None if frame["face"] is None else [0.25 * i, -0.125]
    return data


def test_version_2_carries_detector_boxes_shifts_and_camera_modes() -> None:
    trace = parse_trace(json.dumps(_valid_v2()))
    assert TRACE_SCHEMA_VERSION == 2
    assert trace.detection is not None and trace.shift is not None
    assert trace.detection[0].tolist() == [101.5, 79.0, 121.0, 119.5]
    assert np.isnan(trace.detection[1]).all()  # the detector did not look at this frame
    assert trace.shift[8].tolist() == [2.0, -0.125]
    assert np.isnan(trace.shift[5]).all()  # no face, no shift
    assert trace.camera == CameraModes("manual", None)
    assert trace.camera.exposure_locked is True
    again = parse_trace(json.dumps(trace.to_json()))
    assert again.to_json() == trace.to_json()


def test_version_1_is_still_read_and_written_back_as_version_1() -> None:
    trace = parse_trace(_valid())
    assert trace.detection is None and trace.shift is None and trace.camera is None
    assert trace.to_json()["version"] == 1
    assert "detection" not in trace.to_json()["frames"][0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(camera=None), "camera"),
        (lambda d: d["camera"].update(exposure_mode="locked"), "camera.exposure_mode"),
        (lambda d: d["camera"].update(iso=100), "camera.iso"),
        (lambda d: d["camera"].pop("white_balance_mode"), "camera.white_balance_mode"),
        (lambda d: d["frames"][4].update(detection=[1, 2, 3]), "frames[4].detection"),
        (lambda d: d["frames"][4].update(detection=[1, 2, 0, 4]), "frames[4].detection[2] (w)"),
        (lambda d: d["frames"][6].update(shift=[1.0]), "frames[6].shift"),
        (lambda d: d["frames"][6].update(shift=[1.0, 1e6]), "frames[6].shift[1]"),
        (lambda d: d["frames"][6].update(shift=["1", 0]), "frames[6].shift[0]"),
        (lambda d: d["frames"][6].pop("shift"), "frames[6].shift"),
    ],
)
def test_malformed_version_2_fields_are_named(change: Any, field: str) -> None:
    data = copy.deepcopy(_valid_v2())
    change(data)
    with pytest.raises(TraceInvalid) as caught:
        parse_trace(data)
    assert caught.value.field == field
