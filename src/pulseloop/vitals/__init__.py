"""Camera vitals (rPPG): heart rate, breathing rate and HRV from a face, with a quality gate.

An optional part of pulseloop: ``pip install 'pulseloop[vitals]'``. The public names::

    from pulseloop.vitals import parse_trace, analyze_trace, analyze_video, VitalsResult
    result = analyze_trace(parse_trace(upload_bytes))      # the browser's colour trace
    result = analyze_video("scan.webm")                     # or a video file
    result.to_json()  # {"vitals", "quality", "waveform", "spectrum", "failure_reason"}

Async callers use :mod:`pulseloop.vitals.pool` (worker processes); test data comes from
:mod:`pulseloop.vitals.synthetic`. The trace schema is in ``docs/vitals.md``.
"""

from __future__ import annotations

try:
    import av  # noqa: F401
    import cv2  # noqa: F401
    import numpy  # noqa: F401
    import scipy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a separate interpreter
    raise ImportError(
        f"pulseloop.vitals needs the vitals extra ({exc.name} is missing): "
        "pip install 'pulseloop[vitals]'"
    ) from exc

from pulseloop.vitals.analyze import analyze_trace, analyze_video
from pulseloop.vitals.errors import TraceInvalid, VideoUnreadable, VitalsError
from pulseloop.vitals.quality import FAILURE_MESSAGES, FailureReason
from pulseloop.vitals.result import PulseSpectrum, Quality, Vitals, VitalsResult, Waveform
from pulseloop.vitals.trace import TRACE_SCHEMA_VERSION, Trace, parse_trace

__all__ = [
    "FAILURE_MESSAGES",
    "TRACE_SCHEMA_VERSION",
    "FailureReason",
    "PulseSpectrum",
    "Quality",
    "Trace",
    "TraceInvalid",
    "VideoUnreadable",
    "Vitals",
    "VitalsError",
    "VitalsResult",
    "Waveform",
    "analyze_trace",
    "analyze_video",
    "parse_trace",
]
