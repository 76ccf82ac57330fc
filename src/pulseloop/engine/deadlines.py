"""Whole-run deadlines: ``Loop.run_timeout`` or ``trigger(..., run_timeout=...)``.

Design record. A run's deadline is stored on its row when it is created (the trigger's
``run_timeout``, else its loop's, counted from creation; a schedule's tick run counts
from the tick). The worker's timer pass fails unfinished runs whose deadline passed, in
the store, the way a cancel does: so a run parked on a week-long wait fails at its
deadline without being woken and replayed, and a running one loses its lease (its worker
stops it at the next heartbeat or write). Considered and rejected: raising ``RunTimeout``
inside the run on its next replay (a parked run would first have to be woken, and user
code could catch it and carry on past its deadline).

A retried run (``app.retry``) has no deadline: retrying is an operator's decision to let
it run on.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine.loop import Loop
from pulseloop.errors import RunTimeout, error_info

TIMEOUT_ERROR = error_info(
    RunTimeout(
        "the run did not finish before its deadline (its loop's run_timeout or the "
        "trigger's) and was failed where it stood; raise the timeout, or retry the run to "
        "let it run on without one"
    )
)


def run_timeout_s(cls: type[Loop] | None, override: Duration | None = None) -> float | None:
    """The run timeout in seconds: the trigger's ``override``, else the loop's, else None."""
    chosen = override if override is not None else getattr(cls, "run_timeout", None)
    return None if chosen is None else duration_seconds(chosen)


def timeouts(loops: Mapping[str, type[Loop]]) -> dict[str, float]:
    """Each served loop's run timeout in seconds (loops without one are left out)."""
    found = {name: run_timeout_s(cls) for name, cls in loops.items()}
    return {name: s for name, s in found.items() if s is not None}
