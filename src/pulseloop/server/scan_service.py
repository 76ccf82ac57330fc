"""What the scan pages need from the facial-scan connector, and the page's own moves.

* :class:`ScanPort`: the connector's operations (lookup, upload) as a Protocol. The real
  implementation is :class:`pulseloop.connectors.facial_scan.ScanService`.
* :class:`ScanJourney`: where the patient is (``opened`` -> ``aligning`` -> ``capturing``),
  reported by the page, and **giving up**: a page whose checks never pass ends the scan as
  ``failed`` with the reason that kept it from filming, so the waiting run wakes instead of
  waiting for the link to expire. Both sit on the store's ``move_scan`` /
  ``finish_open_scan``.
* :class:`Clinics`: the clinic name, contact and privacy link shown on every scan page, per
  organization, from the JSON file named by ``PULSELOOP_CLINICS``.

Every error raised here is a :class:`~pulseloop.errors.PulseloopError` whose ``code`` the
server maps to an HTTP status in :mod:`pulseloop.server.errors`.

Design note (giving up): a give-up must not race an upload, and must not leave a window
in which a crash strands the scan. ``finish_open_scan`` fails the scan only if it is still
open (not uploaded, not expired) and signals the run, in one transaction: a concurrent
upload makes it lose cleanly. Considered and rejected: taking the upload slot with
``move_scan`` and then ``finish_scan`` (a crash between the two left the scan
``processing`` with no analysis job, so the run waited until its own timeout), and
``accept_upload`` (its analysis job could be finished first as ``analysis_error``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pulseloop.connectors.facial_scan import ScanServices, open_link
from pulseloop.connectors.tokens import hash_token
from pulseloop.engine.codec import encode
from pulseloop.errors import InvalidRequest, ScanAlreadyUploaded
from pulseloop.store.base import SCAN_OPEN_STATUSES, ScanRecord

UPLOADED_STATUSES = frozenset({"processing", "completed", "failed"})
JOURNEY_STATUSES = ("opened", "aligning", "capturing")
"""What the page may report: the link was opened, the camera is on and the checks run,
filming started."""
_MOVES_FROM: dict[str, tuple[str, ...]] = {
    "opened": ("pending",),
    "aligning": ("pending", "opened", "capturing"),  # from capturing: the capture restarted
    "capturing": ("pending", "opened", "aligning"),
}
GIVE_UP_REASONS = frozenset(
    {"no_face", "too_dark", "face_too_small", "face_too_close", "face_not_centred"}
)
"""Why a page may end its scan: the check that kept the capture from starting longest."""
MAX_GIVE_UP_S = 3600.0


class ScanState(Protocol):
    """The part of ``ScanView`` the pages read."""

    @property
    def status(self) -> str:
        """A ``SCAN_OPEN_STATUSES`` member, ``processing``, or a terminal status."""

    @property
    def failure_reason(self) -> str | None:
        """Why a ``failed`` scan failed (a ``pulseloop.vitals`` or page failure code)."""

    @property
    def expires_at(self) -> datetime:
        """When the link stops working."""

    @property
    def vitals(self) -> dict[str, Any] | None:
        """Heart rate and friends, once ``completed``."""


class ScanPort(Protocol):
    """The scan operations behind ``/s/<token>``."""

    app: ScanServices

    async def by_token(self, token: str) -> ScanState:
        """The scan of this link (ScanNotFound / ScanExpired)."""

    async def mark_capturing(self, token: str) -> ScanState:
        """The page started filming (pending -> capturing)."""

    async def accept_trace(self, token: str, body: bytes) -> ScanState:
        """Validate and store the trace; analysis continues in the background."""

    async def drain(self) -> None:
        """Wait for background analyses to finish."""


class ScanJourney:
    """The patient's progress through the page, and giving up, for one App's store."""

    def __init__(self, app: ScanServices) -> None:
        self.app = app

    async def open(self, token: str) -> ScanRecord:
        """The scan of a live link (ScanNotFound / ScanExpired otherwise); changes nothing."""
        return await open_link(self.app, token)

    def expires_in_s(self, record: ScanRecord) -> float:
        """Seconds the link has left by the server's clock (the page has no other clock)."""
        return max(0.0, record.expires_at - self.app.clock.now())

    async def report(self, token: str, status: str) -> ScanRecord:
        """Move the scan to ``status`` if that is forward (or a capture restart); a repeat
        or a report after the upload changes nothing. Returns the scan as it now is."""
        if status not in _MOVES_FROM:
            raise InvalidRequest(
                f"status {status!r} is not one the page reports; use one of "
                f"{', '.join(JOURNEY_STATUSES)}",
                "status",
            )
        record = await self.open(token)
        if record.status == status or record.status not in _MOVES_FROM[status]:
            return record
        moved = await self.app.store.move_scan(
            hash_token(token), _MOVES_FROM[status], status, self.app.clock.now()
        )
        return moved or await self.open(token)

    async def give_up(self, token: str, reason: str, detail: Mapping[str, Any]) -> ScanRecord:
        """End an open scan as ``failed`` with ``reason`` and wake its run.

        ``detail`` is what the page measured (``tried_s``, ``failing_s`` per reason), kept
        with the result for operators. Giving up twice returns the first outcome; a scan
        already uploaded is :class:`ScanAlreadyUploaded`.
        """
        if reason not in GIVE_UP_REASONS:
            raise InvalidRequest(
                f"reason {reason!r} is not one a page gives up with; use one of "
                f"{', '.join(sorted(GIVE_UP_REASONS))}",
                "reason",
            )
        page = _page_detail(detail)
        record = await self.open(token)
        if record.status == "failed" and record.failure_reason in GIVE_UP_REASONS:
            return record  # a retried request whose first answer was lost
        if record.status not in SCAN_OPEN_STATUSES:
            raise _uploaded(record)
        result = {
            "vitals": None, "quality": None, "waveform": None, "spectrum": None,
            "failure_reason": reason, "page": page,
        }  # fmt: skip
        finished = await self.app.store.finish_open_scan(  # one transaction: no crash window
            hash_token(token), SCAN_OPEN_STATUSES, "failed",
            encode(result, "the scan page's outcome"), reason, self.app.clock.now(),
        )  # fmt: skip
        if finished is None:  # an upload won the race, or the link expired meanwhile
            raise _uploaded(await self.open(token))
        self.app.notify_work()
        return finished


def _page_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The page's measurements, checked: seconds tried and seconds failing each reason."""
    tried = detail.get("tried_s", 0)
    if not _seconds(tried):
        raise InvalidRequest(f"tried_s {tried!r} must be seconds (0-{MAX_GIVE_UP_S:g})", "tried_s")
    failing = detail.get("failing_s", {})
    if not isinstance(failing, dict) or not all(
        key in GIVE_UP_REASONS and _seconds(value) for key, value in failing.items()
    ):
        raise InvalidRequest(
            'failing_s must map reasons to seconds, e.g. {"no_face": 58.2}', "failing_s"
        )
    return {
        "tried_s": round(float(tried), 1),
        "failing_s": {key: round(float(value), 1) for key, value in sorted(failing.items())},
    }


def _seconds(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_GIVE_UP_S
    )


def _uploaded(record: ScanRecord) -> ScanAlreadyUploaded:
    return ScanAlreadyUploaded(
        f"this scan link already received its upload (the scan is {record.status}); "
        "each link is used once"
    )


# ---- clinics -----------------------------------------------------------------------------
CLINICS_ENV = "PULSELOOP_CLINICS"
DEFAULT_CLINIC_KEY = "*"
_CLINIC_FIELDS = {"name": 120, "contact": 120, "contact_url": 300, "privacy_url": 500}
_URL_SCHEMES = {"contact_url": ("tel:", "mailto:", "https://"), "privacy_url": ("https://",)}


@dataclass(frozen=True, slots=True)
class Clinic:
    """Who sent the link: shown on every scan page so an SMS link is recognisably theirs."""

    name: str = ""
    contact: str = ""
    """How to reach them, as a person reads it ("020 7946 0000", "the ward desk")."""
    contact_url: str = ""
    """``tel:``, ``mailto:`` or ``https://`` link for ``contact``."""
    privacy_url: str = ""
    """Their privacy notice (https); without one the page links its built-in notice."""

    @property
    def display_name(self) -> str:
        """The name, or "your care team" when none is configured."""
        return self.name or "your care team"


class Clinics:
    """Clinic details per organization, loaded once at start-up.

    ``PULSELOOP_CLINICS`` names a JSON file mapping organization names to details; the key
    ``"*"`` applies to organizations not listed::

        {"clinic-a": {"name": "Riverside Heart Clinic", "contact": "020 7946 0000",
                      "contact_url": "tel:+442079460000",
                      "privacy_url": "https://riverside.example/privacy"}}

    A bad file stops the server from starting (ValueError naming the org and field).
    """

    def __init__(self, by_org: Mapping[str, Clinic] | None = None) -> None:
        self._by_org = dict(by_org or {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Clinics:
        """From the file named by ``PULSELOOP_CLINICS`` (none set: no clinic details)."""
        path = (os.environ if environ is None else environ).get(CLINICS_ENV)
        if not path:
            return cls()
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{CLINICS_ENV}={path}: cannot read it as JSON ({exc})") from exc
        return cls.parse(raw, source=path)

    @classmethod
    def parse(cls, raw: Any, *, source: str = "clinic settings") -> Clinics:
        """Validate ``{org: {name, contact, contact_url, privacy_url}}``."""
        if not isinstance(raw, dict):
            raise ValueError(f"{source}: expected an object of organizations")
        return cls({str(org): _clinic(fields, f"{source}: {org}") for org, fields in raw.items()})

    def for_org(self, org: str) -> Clinic:
        """The org's details, else the ``"*"`` entry, else none."""
        return self._by_org.get(org) or self._by_org.get(DEFAULT_CLINIC_KEY) or Clinic()


def _clinic(fields: Any, where: str) -> Clinic:
    if not isinstance(fields, dict):
        raise ValueError(f"{where}: expected an object with {', '.join(_CLINIC_FIELDS)}")
    unknown = set(fields) - set(_CLINIC_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; use {list(_CLINIC_FIELDS)}")
    values: dict[str, str] = {}
    for name, limit in _CLINIC_FIELDS.items():
        value = fields.get(name, "")
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"{where}.{name}: expected text of at most {limit} characters")
        schemes = _URL_SCHEMES.get(name)
        if value and schemes and not value.lower().startswith(schemes):
            raise ValueError(f"{where}.{name}: {value!r} must start with {' or '.join(schemes)}")
        values[name] = value.strip()
    return Clinic(**values)
