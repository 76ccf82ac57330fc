"""Synthetic scan uploads: the bytes a patient's page would send, with the truth."""

from __future__ import annotations

import functools
import json

from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, make_trace


@functools.cache
def trace_upload(heart_rate_bpm: float = 72.0, face_visible: bool = True) -> tuple[bytes, float]:
    """A 20 s colour trace as upload bytes, and the true heart rate."""
    scene = SceneSpec(duration_s=20.0, face_visible=face_visible, seed=3)
    trace, truth = make_trace(PulseSpec(heart_rate_bpm=heart_rate_bpm, seed=3), scene)
    return json.dumps(trace.to_json()).encode(), truth.heart_rate_bpm
