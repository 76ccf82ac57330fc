"""Log records that say which run, loop and step they come from.

Every ``logging`` record made while a run executes (the engine's own, and a user's
``log.info`` inside a step callback or between steps) carries these attributes; outside
a run they are None, so a format string naming them never fails:

=========================  ===============================================
``pulseloop_run_id``       the run's id
``pulseloop_loop``         the run's loop name
``pulseloop_org``          the run's organization
``pulseloop_step``         the step whose callback is running, or None
``pulseloop_attempt``      that step's attempt number (1, 2, ...), or None
=========================  ===============================================

Ids and names only: never a body, output or scan result (patient data stays out of logs).

Design record. Two context variables (the run, set once per execution; the step's scope,
set around each attempt) are read by a wrapper of the log-record factory. Context
variables follow asyncio tasks (``asyncio.gather`` of steps keeps each step's name) and
``asyncio.to_thread`` (sync callbacks). Considered and rejected: a ``logging.Filter`` on
the root logger (filters on a logger never see records of its children, so a user's
``getLogger(__name__)`` would miss it; a filter per handler needs the user to install
it); and bare names such as ``run_id`` (``extra={"run_id": ...}`` in user code would
then raise ``KeyError`` in ``makeRecord``).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pulseloop.engine.context import StepScope
from pulseloop.store.records import RunRecord

RUN: ContextVar[RunRecord | None] = ContextVar("pulseloop_run", default=None)
"""The run executing in this task (set by ``Execution.execute``)."""
STEP: ContextVar[StepScope | None] = ContextVar("pulseloop_step", default=None)
"""The step attempt running in this task (set by ``Execution.do``)."""

ATTRIBUTES = (
    "pulseloop_run_id",
    "pulseloop_loop",
    "pulseloop_org",
    "pulseloop_step",
    "pulseloop_attempt",
)
"""The record attributes this module adds."""


class _Factory:
    """Wraps the process's record factory (whatever it was when installed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        run, step = RUN.get(), STEP.get()
        record.pulseloop_run_id = None if run is None else run.id
        record.pulseloop_loop = None if run is None else run.loop
        record.pulseloop_org = None if run is None else run.org
        record.pulseloop_step = None if step is None else step.step_name
        record.pulseloop_attempt = None if step is None else step.attempt
        return record


def install() -> None:
    """Make every log record carry the run context (idempotent; a worker calls it)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _Factory):
        logging.setLogRecordFactory(_Factory(current))
