"""What users write: a :class:`Loop` with ``async def run(self, event, step)``."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pulseloop.durations import Duration
    from pulseloop.engine.cron import Cron
    from pulseloop.engine.flow import Concurrency
    from pulseloop.engine.step import Step


@dataclass(frozen=True, slots=True)
class Event:
    """What a run was triggered with: its id, the JSON body and when it arrived."""

    id: str
    body: Any
    received_at: datetime


MAX_SUMMARY_CHARS = 200


class Loop:
    """Base class of a durable workflow.

    Subclass it and implement ``run``. The loop's name (what ``trigger`` takes) is the
    class attribute ``name`` if set, else the kebab-cased class name
    (``HealthCheck`` -> ``"health-check"``).
    """

    name: ClassVar[str] = ""
    run_timeout: ClassVar[Duration | None] = None
    """A whole-run deadline counted from the trigger (or the schedule's tick): a run not
    finished by then fails with ``RunTimeout``, even while parked. None: no deadline."""
    schedules: ClassVar[Sequence[Cron]] = ()
    """Recurring triggers of this loop (see docs/schedules.md): ``[Cron("0 8 * * *",
    id="morning", tz="Europe/Paris")]``. Workers serving the loop keep them in the store."""
    concurrency: ClassVar[Concurrency | None] = None
    """At most ``limit`` runs per key at once, e.g. ``Concurrency(limit=1, key=lambda e:
    e.body["patientId"])``; sleeping and waiting runs hold no slot (docs/flow-control.md).
    None: no limit."""
    priority: ClassVar[int] = 0
    """The default priority of this loop's runs: higher is claimed first among queued
    runs (FIFO within one priority); ``trigger(..., priority=N)`` overrides it."""

    async def run(self, event: Event, step: Step) -> Any:
        """The workflow. Side effects belong in ``step.do``; code between steps re-runs."""
        raise NotImplementedError(f"{type(self).__name__} must implement `async def run`")

    def summary(self, event: Event, output: Any) -> str | None:
        """A line operators see for this run in run lists (dashboard, ``/v1/runs``,
        ``pulseloop runs list``): e.g. the patient reference and the outcome, chosen by
        the loop rather than guessed from its output. Called when the run parks
        (``output`` is None) and when it completes (its return value); the first
        ``MAX_SUMMARY_CHARS`` characters are kept. The default shows nothing. An
        exception here is logged and leaves the run unharmed.
        """
        return None


def loop_name(cls: type[Loop]) -> str:
    """The name a loop is triggered by."""
    explicit = cls.__dict__.get("name")
    if isinstance(explicit, str) and explicit:
        return explicit
    return kebab_case(cls.__name__)


def kebab_case(name: str) -> str:
    """``HealthCheck`` -> ``health-check``; ``HTTPPoller`` -> ``http-poller``."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", words)
    return words.replace("_", "-").lower()


def loop_version(cls: type[Loop]) -> str:
    """A short hash of the loop's source: what a deploy of this loop is called."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = f"{cls.__module__}.{cls.__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()[:12]
