"""``ctx.FACIAL_SCAN`` and the scan link's server side.

:class:`FacialScanConnector` is what a step sees: ``create`` provisions a scan for this
run (idempotent per run and step: a step re-executed after a crash gets the same scan and
the same link), ``get_results`` peeks at the run's latest scan. :class:`ScanService` is
what the HTTP layer calls when the patient's page talks to us: look a link up, note that
filming started, accept the colour trace and analyse it off the event loop. A terminal
outcome wakes the parked run through the store (see ``store/sqlite/scans.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pulseloop.config import Settings
from pulseloop.connectors.analysis import AnalysisRunner, AnalysisServices
from pulseloop.connectors.tokens import derive_token, hash_token
from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine.codec import encode
from pulseloop.errors import (
    LimitExceeded,
    NoScanProvisioned,
    PulseloopError,
    ScanAlreadyUploaded,
    ScanExpired,
    ScanNotFound,
)
from pulseloop.store.base import SCAN_OPEN_STATUSES, ScanRecord
from pulseloop.store.sealed.files import sealed_upload

if TYPE_CHECKING:
    from pulseloop.engine.context import StepCtx

log = logging.getLogger(__name__)

MAX_TRACE_BYTES = 4 * 1024 * 1024
"""Largest colour-trace upload (a 30 s scan at 30 fps is about 150 KB)."""
MAX_METADATA_BYTES = 64 * 1024
MAX_EXPIRES_IN_S = 30 * 86400.0
DEFAULT_EXPIRES_IN: Duration = "1 hour"


class ScanServices(AnalysisServices, Protocol):
    """What the scan connector needs from its process (a
    :class:`~pulseloop.runtime.Runtime`, which steps get as ``scope.services``, or an
    ``App``): the store's scans and analysis queue, the clock, the link secret and public
    URL, and the process's hooks. Nothing of ``App`` beyond this."""

    @property
    def secret(self) -> bytes:
        """The key that signs scan links."""

    @property
    def settings(self) -> Settings:
        """Where links point (``public_url``)."""

    def timers_changed(self) -> None:
        """A scan's expiry is a new timer: tell this process's worker."""


def scan_url(services: ScanServices, scan: ScanRecord) -> str:
    """The patient's link for ``scan``."""
    base = services.settings.public_url.rstrip("/")
    return f"{base}/s/{derive_token(services.secret, scan.id)}"


class FacialScanConnector:
    """The facial scan connector, scoped to the current run (``ctx.FACIAL_SCAN``)."""

    def __init__(self, ctx: StepCtx) -> None:
        self._ctx = ctx

    async def create(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        expires_in: Duration | None = None,
        metadata: Any = None,
    ) -> dict[str, Any]:
        """Provision a scan; return ``{id, url, status, expires_at}``.

        ``expires_in`` (default 1 hour, at most 30 days) bounds how long the link works;
        ``metadata`` (any JSON up to 64 KiB) is echoed back unchanged with the result.
        The spec's spelling ``create({"expiresIn": 3600, "metadata": {...}})`` works too.
        """
        scope = self._ctx.ensure_alive()
        if options is not None:
            unknown = set(options) - {"expiresIn", "expires_in", "metadata"}
            if unknown:
                raise PulseloopError(
                    f"FACIAL_SCAN.create got unknown option(s) {sorted(unknown)}; "
                    "use expires_in and metadata"
                )
            expires_in = options.get("expiresIn", options.get("expires_in", expires_in))
            metadata = options.get("metadata", metadata)
        seconds = duration_seconds(DEFAULT_EXPIRES_IN if expires_in is None else expires_in)
        if not 0 < seconds <= MAX_EXPIRES_IN_S:
            raise PulseloopError(
                f"FACIAL_SCAN.create expires_in={expires_in!r} must be more than 0 and at most "
                "30 days"
            )
        meta_json = encode({} if metadata is None else metadata, "scan metadata")
        if len(meta_json.encode()) > MAX_METADATA_BYTES:
            raise LimitExceeded(
                f"scan metadata is {len(meta_json.encode()):,} bytes, over the 64 KiB limit; "
                "keep ids in metadata, not documents"
            )
        services: ScanServices = scope.services
        now = services.clock.now()
        scan_id = f"scan_{uuid.uuid4().hex}"
        record = await services.store.create_scan(
            scope.org, scope.run_id, scope.step_name, scan_id,
            hash_token(derive_token(services.secret, scan_id)), meta_json, now, now + seconds,
        )  # fmt: skip
        services.timers_changed()  # the expiry is a timer too
        return {
            "id": record.id,
            "url": scan_url(services, record),
            "status": record.status,
            "expires_at": record.payload()["expires_at"],
        }

    async def get_results(self) -> dict[str, Any]:
        """The current state of this run's latest scan, without waiting."""
        scope = self._ctx.ensure_alive()
        services: ScanServices = scope.services
        record = await services.store.latest_scan(scope.org, scope.run_id)
        if record is None:
            raise NoScanProvisioned(
                "this run has not provisioned a scan yet; call ctx.FACIAL_SCAN.create in an "
                "earlier step"
            )
        return record.payload()

    getResults = get_results  # the spec's name


@dataclass(frozen=True, slots=True)
class ScanView:
    """What the patient's page may know about its scan."""

    id: str
    status: str
    failure_reason: str | None
    expires_at: datetime
    vitals: dict[str, Any] | None
    quality: dict[str, Any] | None
    metadata: Any

    @classmethod
    def of(cls, record: ScanRecord) -> ScanView:
        """The view of a stored scan."""
        payload = record.payload()
        return cls(
            record.id, record.status, record.failure_reason,
            datetime.fromtimestamp(record.expires_at, UTC), payload["vitals"],
            payload["quality"], payload["metadata"],
        )  # fmt: skip


class OrgScans(Protocol):
    """Reading one organization's scans (an :class:`~pulseloop.client.OrgClient`)."""

    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        """A scan of the organization by id, or None."""


class ScanService:
    """The server side of scan links: lookup, capture start, trace upload, analysis."""

    def __init__(self, app: ScanServices, *, analyse: bool = True) -> None:
        """``analyse=False``: accept uploads but leave their analysis to other processes
        (any process with the vitals extra that runs an :class:`AnalysisRunner`)."""
        self.app = app
        self.runner = AnalysisRunner(app) if analyse else None

    async def by_token(self, token: str) -> ScanView:
        """The scan a link opens (ScanNotFound / ScanExpired otherwise)."""
        return ScanView.of(await self._open(token))

    async def mark_capturing(self, token: str) -> ScanView:
        """The page started filming: pending -> capturing."""
        record = await self._open(token)
        moved = await self.app.store.move_scan(
            hash_token(token), ("pending",), "capturing", self.app.clock.now()
        )
        return ScanView.of(moved or record)

    async def accept_trace(self, token: str, body: bytes) -> ScanView:
        """Validate an upload, take the link's one upload, analyse in the background."""
        from pulseloop.vitals.trace import parse_trace  # optional extra: imported on use

        if len(body) > MAX_TRACE_BYTES:
            raise LimitExceeded(
                f"the trace is {len(body):,} bytes, over the {MAX_TRACE_BYTES:,}-byte limit"
            )
        record = await self._open(token)
        if record.status not in SCAN_OPEN_STATUSES:
            raise _already(record)
        await asyncio.to_thread(parse_trace, body)  # TraceInvalid names the field
        moved = await self.app.store.accept_upload(  # the job is stored with the 202
            hash_token(token), SCAN_OPEN_STATUSES, "trace", body.decode("utf-8"),
            self.app.clock.now(),
        )  # fmt: skip
        if moved is None:  # a concurrent upload won, or it expired meanwhile
            raise _already(await self._open(token))
        await self._kick()
        return ScanView.of(moved)

    async def open_for_upload(self, scans: OrgScans, scan_id: str) -> ScanRecord:
        """A scan of the organization ``scans`` acts for that can still take its one
        upload (ScanNotFound, ScanExpired, ScanAlreadyUploaded otherwise); changes
        nothing."""
        record = await scans.get_scan(scan_id)
        if record is None:
            raise ScanNotFound(f"no scan {scan_id!r} in this organization; check the id")
        if record.status in SCAN_OPEN_STATUSES and record.expires_at <= self.app.clock.now():
            raise ScanExpired(f"scan {scan_id!r} has expired; the loop must provision a new one")
        if record.status not in SCAN_OPEN_STATUSES:
            raise _already(record)
        return record

    async def accept_video(self, record: ScanRecord, path: Path) -> ScanRecord:
        """Take a face video (already on disk) as the one upload of ``record`` (from
        :meth:`open_for_upload`) and analyse it in the background; the file is deleted
        once analysed (or refused). Returns the scan, now ``processing``. A plaintext file
        is sealed in place first (encryption at rest, docs/security.md)."""
        try:
            await sealed_upload(self.app.store, path, record.org, record.id)
            moved = await self.app.store.accept_upload(
                hash_token(derive_token(self.app.secret, record.id)),
                SCAN_OPEN_STATUSES, "video", str(path), self.app.clock.now(),
            )  # fmt: skip
            if moved is None:  # a concurrent upload won, or it expired meanwhile
                latest = await self.app.store.get_scan(record.org, record.id)
                raise _already(latest or record)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        await self._kick()
        return moved

    async def start(self) -> None:
        """Start analysing (and pick up uploads a crashed process accepted)."""
        if self.runner is not None:
            await self.runner.start()

    async def drain(self) -> None:
        """Wait until no accepted upload is left unanalysed here (tests, shutdown)."""
        if self.runner is not None:
            await self.runner.drain()

    async def stop(self) -> None:
        """Finish the analyses in flight and stop claiming new ones."""
        if self.runner is not None:
            await self.runner.stop()

    async def _kick(self) -> None:
        if self.runner is not None:
            await self.runner.start()  # started on first use when no lifespan ran
            self.runner.kick()

    async def _open(self, token: str) -> ScanRecord:
        return await open_link(self.app, token)


async def open_link(app: ScanServices, token: str) -> ScanRecord:
    """The scan of a live link (ScanNotFound / ScanExpired otherwise); changes nothing."""
    record = await app.store.scan_by_token(hash_token(token))
    if record is None:
        raise ScanNotFound("this scan link does not exist; check the link you were sent")
    expired = record.status == "expired" or (
        record.status in SCAN_OPEN_STATUSES and record.expires_at <= app.clock.now()
    )
    if expired:
        raise ScanExpired("this scan link has expired; ask your care team for a new one")
    return record


def _already(record: ScanRecord) -> PulseloopError:
    if record.status == "expired":
        return ScanExpired("this scan link has expired; ask your care team for a new one")
    return ScanAlreadyUploaded(
        f"this scan link already received its upload (the scan is {record.status}); "
        "each link accepts one upload"
    )
