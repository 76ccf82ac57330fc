"""Child loops: ``await step.run_loop(name, loop, body)`` runs another loop as a child run.

Design record. The child's run id is derived from the parent's id and the step name
(:func:`child_run_id`), and the store inserts the child and the parent's wait for it
idempotently in one fenced transaction (``ChildRuns.start_child``): a worker killed at any
point, replaying, finds the first child, never a second. The parent then parks like any
wait, holding no worker. The child's terminal transition (finish, cancel, deadline)
leaves the parent a signal in its own transaction, re-queueing the parent once none of
its open child waits is still unanswered, so a fan-out of n children replays the parent
once at the end rather than n times. The signal is only a wake-up: the child's row, read
again by ``start_child``, says how it ended, so nothing of the child's output is copied
into the signals table. Considered and rejected: a child id from a random uuid recorded
in a step before the insert (two transactions: a crash between them starts two
children); polling the child from the parent (a worker per waiting parent).

Children never outlive their parent: any terminal transition of a run cancels its
unfinished descendants in the store (see ``store/family.py``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pulseloop import errors
from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine import tracing
from pulseloop.engine.codec import decode, encode
from pulseloop.engine.deadlines import run_timeout_s
from pulseloop.engine.loop import Loop, loop_name
from pulseloop.store.base import (
    TERMINAL_STATUSES,
    ChildStart,
    RunRecord,
    StepRecord,
    WaitRecord,
    child_signal_key,
)

if TYPE_CHECKING:
    from pulseloop.engine.execution import Execution

MAX_WAIT_S = 365 * 86400.0


def child_run_id(parent_id: str, step: str) -> str:
    """The child's run id: ``<parent id>~<step>`` when that is a valid run id, else the
    parent's id (shortened) and a digest of the step name. Same inputs, same id."""
    from pulseloop.client import MAX_RUN_ID_CHARS, check_run_id

    readable = f"{parent_id}~{step}"
    try:
        return check_run_id(readable)
    except errors.InvalidRunId:
        digest = hashlib.sha256(f"{parent_id}\0{step}".encode()).hexdigest()[:32]
        return f"{parent_id[: MAX_RUN_ID_CHARS - 34]}~{digest}"


def resolve_loop(loop: str | type[Loop]) -> tuple[str, type[Loop] | None]:
    """(name, class if given) of ``run_loop``'s loop argument."""
    if isinstance(loop, type) and issubclass(loop, Loop):
        return loop_name(loop), loop
    if isinstance(loop, str) and loop:
        return loop, None
    raise errors.PulseloopError(
        f"run_loop: {loop!r} is not a loop; pass a loop's name or its Loop class"
    )


async def run_loop(
    ex: Execution, name: str, loop: str | type[Loop], body: Any, timeout: Duration | None
) -> Any:
    """Start (once) the child run of step ``name``, park until it ends, return its output."""
    target, cls = resolve_loop(loop)
    seq = ex._use_name(name)
    recorded = ex.history.steps.get(name)
    if recorded is not None:
        return replay(recorded)
    served = ex.services.served
    if cls is None and served is not None and target not in served:
        raise errors.LoopNotFound(
            f"run_loop {name!r}: no loop named {target!r} is served by this App; "
            f"serve it beside {ex.run.loop!r} (served: {', '.join(sorted(served))})"
        )
    text = encode(body, f"the body of child loop {name!r}")
    now = ex.services.clock.now()
    pending = ex.history.waits.get(name)
    wait_at = pending.deadline_at if pending is not None else _deadline(name, now, timeout)
    started_at = pending.created_at if pending is not None else now
    child_id = child_run_id(ex.run.id, name)
    trace = (  # a trigger span under this step's, so the child's passes join this trace
        tracing.trigger_parent(ex.run.org, child_id, target)
        if tracing.ENABLED and pending is None
        else None
    )
    start = ChildStart(child_id, target, text, name, now,
                       _child_deadline(ex, target, cls, now), trace)  # fmt: skip
    wait = WaitRecord(ex.run.key, name, seq, "child", None, wait_at, started_at)
    child, ours = await ex.services.store.start_child(ex.lease, start, wait)
    if not ours:
        raise errors.PulseloopError(
            f"run_loop {name!r}: run id {start.run_id!r} is taken by a run this step did "
            "not start; rename the step"
        )
    if child.status in TERMINAL_STATUSES:
        return await _ended(ex, name, seq, started_at, child)
    if wait_at is not None and wait_at <= now:
        error = errors.WaitTimeout(
            f"child run {child.id!r} of loop {child.loop!r} did not end within {timeout}; "
            "it is cancelled when this run ends, or catch WaitTimeout and wait again"
        )
        await ex._record(_step(ex, name, seq, started_at, None, errors.error_info(error)))
        raise error
    raise ex._suspend(wait_at, child_signal_key(child.key))


def replay(step: StepRecord) -> Any:
    """A recorded ``run_loop`` step: the child's output, or its failure raised again."""
    info = step.error or {}
    if step.status == "completed":
        return decode(step.output)
    if info.get("type") == "ChildLoopFailed":
        raise errors.ChildLoopFailed(
            str(info.get("child_run_id")), str(info.get("loop")), str(info.get("reason"))
        )
    raise errors.WaitTimeout(str(info.get("message", "")))


async def _ended(ex: Execution, name: str, seq: int, started_at: float, child: RunRecord) -> Any:
    if child.status == "completed":
        await ex._record(_step(ex, name, seq, started_at, child.output, None))
        return decode(child.output)
    error = errors.ChildLoopFailed(child.id, child.loop, _reason(child))
    info = {**errors.error_info(error), "child_run_id": child.id, "loop": child.loop,
            "reason": error.reason}  # fmt: skip
    await ex._record(_step(ex, name, seq, started_at, None, info))
    raise error


def _reason(child: RunRecord) -> str:
    if child.status == "cancelled":
        return "it was cancelled"
    info = child.error or {}
    return f"it failed with {info.get('type', 'an error')}: {info.get('message', '')}"


def _step(
    ex: Execution,
    name: str,
    seq: int,
    started_at: float,
    output: str | None,
    error: dict[str, Any] | None,
) -> StepRecord:
    status = "failed" if error is not None else "completed"
    return StepRecord(ex.run.key, name, seq, "child", status, output, error, 1, started_at,
                      ex.services.clock.now(), ex.version)  # fmt: skip


def _deadline(name: str, now: float, timeout: Duration | None) -> float | None:
    if timeout is None:
        return None
    seconds = duration_seconds(timeout)
    if seconds > MAX_WAIT_S:
        raise errors.LimitExceeded(
            f"run_loop {name!r} waits {seconds:,.0f} s, over the 365-day limit; use a "
            "shorter timeout"
        )
    return now + seconds


def _child_deadline(ex: Execution, target: str, cls: type[Loop] | None, now: float) -> float | None:
    seconds = run_timeout_s(cls) if cls is not None else ex.services.run_timeouts.get(target)
    return None if seconds is None else now + seconds
