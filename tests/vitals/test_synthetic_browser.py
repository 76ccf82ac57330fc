"""The synthetic browser trace is the version-2 trace the scan page sends.

The page (``capture.js``) samples the regions at its anchor box moved by the face's shift,
which it measures on every frame (``static/scan/face-shift.js``, ported in
:mod:`pulseloop.vitals.synthetic.shift`), and uploads the detector's raw boxes on the
frames it looked at. The fairness grid's trace path runs on these traces, so they must
carry the same motion record and follow the face as the page does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pulseloop.vitals import parse_trace
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, make_trace
from pulseloop.vitals.synthetic.pulse import beat_train
from pulseloop.vitals.synthetic.scene import frame_times, head_offset_px, render, true_face_box
from pulseloop.vitals.synthetic.shift import ShiftTracker

SWAY = SceneSpec(duration_s=6.0, width=320, height=240, sway_px=2.0, sway_hz=0.9, seed=4)


def test_the_shift_tracker_follows_the_face_to_a_fraction_of_a_pixel() -> None:
    train = beat_train(PulseSpec(seed=4), SWAY.duration_s)
    tracker = ShiftTracker()
    x0, y0, w, h = (round(v) for v in true_face_box(SWAY))
    measured = []
    for frame in render(SWAY, train):
        # A fixed crop: the face moves inside it, as under a box that does not follow.
        shift = tracker.measure(frame.rgb[y0 : y0 + h, x0 : x0 + w, 1], x0, y0)
        assert shift is not None
        measured.append(shift)
    offsets = head_offset_px(SWAY, frame_times(SWAY))
    error = np.asarray(measured) - (offsets - offsets[0])
    assert float(np.sqrt(np.mean(error**2))) < 0.2  # px; the sway is 2 px
    assert np.ptp(np.asarray(measured)[:, 0]) > 3.0  # it did follow a 4 px swing


def test_a_browser_trace_is_version_2_with_detections_and_shifts() -> None:
    trace, _truth = make_trace(PulseSpec(seed=4), SWAY, browser=True)
    assert trace.detection is not None and trace.shift is not None
    detected = np.isfinite(trace.detection).all(axis=1)
    assert 7.0 <= detected.sum() / SWAY.duration_s <= 9.0  # one every 120 ms
    assert np.isfinite(trace.shift).all()  # measured on every frame with a face
    document = trace.to_json()
    assert document["version"] == 2
    again = parse_trace(json.dumps(document))
    assert again.shift is not None
    np.testing.assert_allclose(again.shift, trace.shift, atol=1e-3)


def test_the_page_box_follows_the_face() -> None:
    # The regions stay on the same skin: the sampled box moves with the 2 px sway (the
    # page's dead band once kept it still while the regions slid over the face). The box
    # also jumps now and then with detector jitter; the share of the sway it missed is what
    # slides the regions in time with the head.
    trace, _truth = make_trace(PulseSpec(seed=4), SWAY, browser=True)
    offsets = head_offset_px(SWAY, frame_times(SWAY))
    for axis in (0, 1):
        sway = offsets[:, axis] - offsets[:, axis].mean()
        box = trace.face[:, axis] - trace.face[:, axis].mean()
        followed = float(box @ sway / (sway @ sway))
        assert followed == pytest.approx(1.0, abs=0.3), axis  # was ~0 (a still box)


@pytest.mark.parametrize("detection", [False, True])
def test_a_trace_with_shifts_is_written_as_version_2(detection: bool) -> None:
    trace, _truth = make_trace(PulseSpec(seed=4), SWAY, browser=True)
    if not detection:
        import dataclasses

        trace = dataclasses.replace(trace, detection=None)
    document = trace.to_json()
    assert document["version"] == 2
    assert all("shift" in frame for frame in document["frames"])
