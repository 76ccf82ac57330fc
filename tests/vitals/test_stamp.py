"""The frame counter stamped into synthetic videos survives the Y4M round trip."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video
from pulseloop.vitals.synthetic.stamp import STAMP_BITS, read_index, stamp_index


def test_each_frame_of_a_y4m_reads_back_its_own_index(tmp_path: Path) -> None:
    path = tmp_path / "stamped.y4m"
    write_video(path, PulseSpec(seed=1), SceneSpec(duration_s=3.0, seed=1), stamp_frames=True)
    with av.open(str(path)) as container:
        read = [read_index(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    assert read == list(range(90))


def test_an_unstamped_frame_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.y4m"
    write_video(path, PulseSpec(seed=1), SceneSpec(duration_s=3.0, seed=1))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert read_index(frame) is None


def test_an_index_too_large_names_the_limit() -> None:
    frame = np.zeros((16, 128, 3), dtype=np.uint8)
    assert read_index(stamp_index(frame, 2**STAMP_BITS - 1)) == 2**STAMP_BITS - 1
    with pytest.raises(ValueError, match="does not fit 12 bits"):
        stamp_index(frame, 2**STAMP_BITS)
