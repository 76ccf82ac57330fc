"""Errors of the vitals part, all under :class:`pulseloop.errors.PulseloopError`::

    PulseloopError
    └── VitalsError              anything the vitals part refuses to read
        ├── TraceInvalid         an uploaded colour trace breaks the schema (``field`` names where)
        └── VideoUnreadable      a file that is not a decodable video with frames

A scan whose *input is fine* but whose signal is too poor is not an error: it is a
:class:`~pulseloop.vitals.result.VitalsResult` with a ``failure_reason``.
"""

from __future__ import annotations

from pulseloop.errors import PulseloopError


class VitalsError(PulseloopError):
    """Root of the errors raised by :mod:`pulseloop.vitals`."""

    code = "vitals_error"


class TraceInvalid(VitalsError, ValueError):
    """A colour trace that does not follow the schema in ``docs/vitals.md``.

    ``field`` is a JSON-path-like pointer to the offending value, e.g. ``frames[12].t_ms``.
    """

    code = "trace_invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(
            f"trace field {field!r} {problem}; see docs/vitals.md for the trace schema "
            "and re-upload a corrected trace"
        )
        self.field = field
        self.problem = problem

    def __reduce__(self) -> tuple[type[TraceInvalid], tuple[str, str]]:
        # Rebuilt from its fields, so it survives the trip back from a worker process.
        return (type(self), (self.field, self.problem))


class VideoUnreadable(VitalsError, ValueError):
    """A file that cannot be decoded as a video (missing, corrupt, truncated, not video)."""

    code = "video_unreadable"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            f"cannot read video {path!r}: {problem}; record again and upload a WebM "
            "(VP8/VP9), MP4 (H.264) or Y4M file"
        )
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[VideoUnreadable], tuple[str, str]]:
        return (type(self), (self.path, self.problem))
