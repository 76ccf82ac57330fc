"""The browser tests' measure of the fake camera's real rate (no browser needed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pulseloop.vitals.synthetic.stamp import SQUARE_PX, STAMP_BITS, stamp_index
from tests.browser.camclock import CameraClock


def _levels(index: int) -> list[float]:
    """What the page's probe reads from a frame stamped with ``index``."""
    frame = stamp_index(np.zeros((SQUARE_PX, SQUARE_PX * (STAMP_BITS + 2), 3), np.uint8), index)
    return [float(v) for v in frame[SQUARE_PX // 2, SQUARE_PX // 2 :: SQUARE_PX, 0]]


def _records(indices: list[int], interval_ms: float) -> list[list[Any]]:
    return [[1000.0 + k * interval_ms, _levels(i)] for k, i in enumerate(indices)]


def test_a_camera_falling_behind_plays_the_content_slower_than_the_clock() -> None:
    # Every frame of a 600-frame file, looping, delivered every 35.46 ms instead of 33.33.
    records = _records([k % 600 for k in range(900)], 1000.0 / (30.0 * 0.94))
    clock = CameraClock.measure(records, file_frames=600, window_s=20.0)
    assert clock.rate(30.0) == pytest.approx(0.94, abs=1e-6)
    assert (clock.skipped, clock.repeated) == (0, 0)


def test_frames_the_page_missed_do_not_change_the_content_rate() -> None:
    # Real time, but the page only saw every other frame, and one frame twice.
    indices = [*range(0, 400, 2), 398]
    times = [1000.0 + i * 1000.0 / 30.0 for i in indices[:-1]] + [1000.0 + 398 * 100 / 3 + 5]
    records = [[t, _levels(i)] for t, i in zip(times, indices, strict=True)]
    clock = CameraClock.measure(records, file_frames=600, window_s=60.0)
    assert clock.rate(30.0) == pytest.approx(1.0, abs=0.01)
    assert (clock.skipped, clock.repeated) == (199, 1)


def test_no_stamped_frames_is_an_error_that_says_so() -> None:
    with pytest.raises(AssertionError, match="stamped frames"):
        CameraClock.measure([[0.0, [0.0] * (STAMP_BITS + 2)]], file_frames=600, window_s=20)
