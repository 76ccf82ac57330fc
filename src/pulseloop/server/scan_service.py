"""What the scan pages need from the facial-scan connector, as a Protocol.

The real implementation is :class:`pulseloop.connectors.facial_scan.ScanService`; tests may
pass any object of this shape to :func:`pulseloop.server.app.create_app`. Every error these
methods raise is a :class:`~pulseloop.errors.PulseloopError` whose ``code`` the server maps
to an HTTP status in :mod:`pulseloop.server.errors`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

UPLOADED_STATUSES = frozenset({"processing", "completed", "failed"})


class ScanState(Protocol):
    """The part of ``ScanView`` the pages read."""

    @property
    def status(self) -> str:
        """``pending``, ``capturing``, ``processing``, ``completed``, ``failed``, ``expired``."""

    @property
    def failure_reason(self) -> str | None:
        """Why a ``failed`` scan failed (a ``pulseloop.vitals`` failure code)."""

    @property
    def expires_at(self) -> datetime:
        """When the link stops working."""

    @property
    def vitals(self) -> dict[str, Any] | None:
        """Heart rate and friends, once ``completed``."""


class ScanPort(Protocol):
    """The scan operations behind ``/s/<token>``."""

    async def by_token(self, token: str) -> ScanState:
        """The scan of this link (ScanNotFound / ScanExpired)."""

    async def mark_capturing(self, token: str) -> ScanState:
        """The page started filming (pending -> capturing)."""

    async def accept_trace(self, token: str, body: bytes) -> ScanState:
        """Validate and store the trace; analysis continues in the background."""

    async def drain(self) -> None:
        """Wait for background analyses to finish."""
