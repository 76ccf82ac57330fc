"""Flow control a loop declares: concurrency limits per key, priorities, rate limits.

``Concurrency`` is read at trigger time: the key is computed from the event then, hashed
(the store keeps only a keyed hash of it, ``store/sealed/flow.py``) and stored on the run,
and the claim enforces the limit (``store/sqlite/flow.py``, ``store/postgres/flow.py``).
``RateLimit`` is checked by ``step.do`` before the step's callback runs: no permit parks
the run on a timer until one frees, as a retry delay would, so no worker waits on it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine.loop import Event, Loop
from pulseloop.errors import InvalidDuration, InvalidFlowControl
from pulseloop.store.records import TriggerWindow

MAX_PRIORITY = 1_000_000
"""Priorities run from ``-MAX_PRIORITY`` to ``MAX_PRIORITY`` (0 is the default)."""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?\s*)?([a-zA-Z]+)\s*$")
_RATE_UNITS = {
    "ms": 0.001, "millisecond": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
    "d": 86400.0, "day": 86400.0,
}  # fmt: skip
_RATE_HELP = (
    'write it as "<count>/<unit>" or "<count>/<n> <unit>" (e.g. "10/second", '
    '"100/minute", "5/10 seconds"); units: millisecond, second, minute, hour, day'
)


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most ``limit`` runs of a loop per key execute at once.

    ``key`` computes the key from the triggering :class:`~pulseloop.Event` (e.g.
    ``lambda e: e.body["patientId"]``); None puts every run of the loop under one key.
    A run holds a slot only while it executes: sleeping, waiting for an event or a scan,
    or parked for a retry, it holds none, and it needs a free slot again to resume.
    Queued runs beyond the limit wait in order (priority, then trigger time) without
    holding up runs of other keys.
    """

    limit: int
    key: Callable[[Event], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise InvalidFlowControl(
                f"Concurrency(limit={self.limit!r}): the limit must be an integer >= 1 "
                "(runs per key at once); to stop a loop, pause its runs instead",
                field="limit",
            )
        if self.key is not None and not callable(self.key):
            raise InvalidFlowControl(
                f"Concurrency(key={self.key!r}) must be a function of the event, e.g. "
                'key=lambda e: e.body["patientId"]',
                field="key",
            )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` calls per ``period`` for ``key``, across every process on the
    database: ``RateLimit("10/second", key="sms")``.

    The window slides: in no interval of ``period`` do more than ``count`` permits go out.
    A step over the limit parks its run until a permit frees (no worker is held).
    """

    rate: str
    key: str
    count: int = field(init=False)
    period_s: float = field(init=False)

    def __post_init__(self) -> None:
        count, period_s = parse_rate(self.rate)
        if not isinstance(self.key, str) or not self.key:
            raise InvalidFlowControl(
                f"RateLimit key {self.key!r} must be a non-empty string naming what is "
                'limited (e.g. key="sms")',
                field="key",
            )
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "period_s", period_s)

    @property
    def digest(self) -> str:
        """What the store keeps for the key (a SHA-256 digest, not the text)."""
        return hashlib.sha256(f"rate\0{self.key}".encode()).hexdigest()


def parse_rate(rate: object) -> tuple[int, float]:
    """``"10/second"`` -> ``(10, 1.0)``; InvalidFlowControl naming the value otherwise."""
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is not None:
        unit = match.group(3).lower()
        unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _RATE_UNITS else unit
        multiple = float(match.group(2)) if match.group(2) else 1.0
        if unit in _RATE_UNITS and int(match.group(1)) >= 1 and multiple > 0:
            period_s = multiple * _RATE_UNITS[unit]
            if math.isfinite(period_s):
                return int(match.group(1)), period_s
    raise InvalidFlowControl(f"cannot read rate limit {rate!r}; {_RATE_HELP}", field="rate")


def check_priority(priority: object) -> int:
    """``priority`` if it is an integer within +-MAX_PRIORITY; InvalidFlowControl else."""
    if (
        isinstance(priority, int)
        and not isinstance(priority, bool)
        and -MAX_PRIORITY <= priority <= MAX_PRIORITY
    ):
        return priority
    raise InvalidFlowControl(
        f"priority {priority!r} must be an integer from {-MAX_PRIORITY} to {MAX_PRIORITY} "
        "(higher runs first; 0 is the default)",
        field="priority",
    )


def concurrency_key(loop: str, concurrency: Concurrency, event: Event) -> str:
    """The run's key digest: SHA-256 of (loop, key). The store keeps a keyed hash of it,
    never the key; errors never quote the event body (it holds patient data)."""
    if concurrency.key is None:
        value: Any = ""
    else:
        try:
            value = concurrency.key(event)
        except Exception as exc:
            raise InvalidFlowControl(
                f"the concurrency key of loop {loop!r} could not be computed from the "
                f"event: {type(exc).__name__} (does every trigger's body carry it?)",
                field="key",
            ) from None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidFlowControl(
            f"the concurrency key of loop {loop!r} returned a {type(value).__name__}; it "
            "must return a string or an integer",
            field="key",
        )
    return hashlib.sha256(f"{loop}\0{value}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TriggerFlow:
    """What a trigger stores for flow control: priority, key digest and limit."""

    priority: int = 0
    key: str | None = None
    limit: int = 0


def trigger_flow(
    cls: type[Loop] | None,
    loop: str,
    run_id: str,
    body: Any,
    now: float,
    priority: int | None = None,
) -> TriggerFlow:
    """Flow control for a new run of ``cls`` (None: a loop this process does not serve,
    triggered for a worker elsewhere; only an explicit priority applies then)."""
    chosen = check_priority(
        priority if priority is not None else (cls.priority if cls is not None else 0)
    )
    concurrency = None if cls is None else cls.concurrency
    if concurrency is None:
        return TriggerFlow(chosen)
    if not isinstance(concurrency, Concurrency):
        raise InvalidFlowControl(
            f"loop {loop!r}: concurrency = {concurrency!r} must be a Concurrency(limit=..., "
            "key=...)",
            field="concurrency",
        )
    event = Event(id=run_id, body=body, received_at=datetime.fromtimestamp(now, UTC))
    return TriggerFlow(chosen, concurrency_key(loop, concurrency, event), concurrency.limit)


def trigger_window(
    loop: str,
    body_text: str,
    debounce: Duration | None,
    debounce_key: str | None,
    dedupe: Duration | None,
    dedupe_key: str | None,
) -> TriggerWindow | None:
    """The debounce or dedupe window a trigger asked for, its key hashed (SHA-256 of loop,
    kind and key; the store keeps a keyed hash of that). Without a key, the body is the
    key: identical bodies fall in one window."""
    if debounce is not None and dedupe is not None:
        raise InvalidFlowControl(
            "trigger takes debounce= or dedupe=, not both: debounce delays the run until "
            "triggers stop, dedupe returns the first run of the window",
            field="debounce",
        )
    for kind, window, key in (("debounce", debounce, debounce_key),
                              ("dedupe", dedupe, dedupe_key)):  # fmt: skip
        if window is None:
            if key is not None:
                raise InvalidFlowControl(
                    f"{kind}_key={key!r} was given without {kind}=; add the window, e.g. "
                    f'{kind}="5 minutes"',
                    field=f"{kind}_key",
                )
            continue
        try:
            seconds = duration_seconds(window)
        except InvalidDuration as exc:
            raise InvalidFlowControl(f"{kind}: {exc}", field=kind) from None
        if seconds <= 0:
            raise InvalidFlowControl(
                f'{kind}={window!r} must be a positive duration, e.g. "5 minutes"', field=kind
            )
        if key is not None and (not isinstance(key, str) or not key):
            raise InvalidFlowControl(
                f"{kind}_key={key!r} must be a non-empty string", field=f"{kind}_key"
            )
        text = key if key is not None else f"body\0{body_text}"
        digest = hashlib.sha256(f"{loop}\0{kind}\0{text}".encode()).hexdigest()
        return TriggerWindow(kind, digest, seconds)
    return None
