"""OpenTelemetry spans for runs, step attempts and waits: the engine's hooks.

The engine calls these only behind the module flag ``ENABLED`` (``if tracing.ENABLED:``),
so with tracing off a step costs one global read and nothing is allocated; nothing of
OpenTelemetry is imported until :func:`enable_tracing` is called. The spans themselves
are built in :mod:`pulseloop.engine.otel`, which needs ``pip install 'pulseloop[otel]'``.

Design record (what a trace of a run looks like; docs/observability.md shows it):

* **One trace per run**, across every worker pass, park and resume. At trigger a short
  ``trigger <loop>`` span is made (a child of whatever span is current: an instrumented
  web handler, a step of another run) and its W3C ``traceparent`` is stored on the run;
  each pass's ``run <loop>`` span is its child. Considered and rejected: span links
  between passes (a viewer shows a run as a scatter of one-span traces to be followed by
  hand); keeping one span open for the run's whole life (it can last months, and would
  die with the process). A schedule's tick gets its trigger span from the timer pass. A
  run stored without a traceparent (triggered with tracing off) gets a trace id derived
  from its key, so its passes still share one trace, under a parent no process exported.
* **A step attempt is a span**, the child of its pass's span, current while the callback
  runs (sync callbacks too: ``asyncio.to_thread`` copies the context), so an instrumented
  HTTP client in a step joins the trace. A retry is a new attempt span in a later pass.
* **Replayed steps are events** on the pass's span (``pulseloop.step.replayed``) and a
  count (``pulseloop.run.replayed_steps``): they did no work this time, so no span.
* **Waits and parks are events** (``pulseloop.wait``, ``pulseloop.wait.resolved``,
  ``pulseloop.park``, ``pulseloop.step.retry``) with what is waited on and the deadline:
  a wait spans passes and processes, so no in-process span could cover it.
* Exception messages are never exported (they may hold patient data): an error is its
  type name (``error.type``) and the span's ERROR status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pulseloop import errors

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from pulseloop.engine.otel import Spans
    from pulseloop.store.records import RunRecord

ENABLED = False
"""Whether spans are made; the engine's hooks test this before calling anything here."""
_spans: Spans | None = None


def enable_tracing(tracer_provider: Any = None) -> None:
    """Emit OpenTelemetry spans for runs, step attempts and waits from this process.

    ``tracer_provider``: the SDK ``TracerProvider`` to use; by default the global one
    (``opentelemetry.trace.set_tracer_provider``). Needs ``pip install 'pulseloop[otel]'``.
    Call it once at start-up, before runs execute; see docs/observability.md.
    """
    global ENABLED, _spans
    try:
        from pulseloop.engine.otel import Spans
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise errors.PulseloopError(
            "tracing needs the OpenTelemetry API, which is not installed: "
            "pip install 'pulseloop[otel]'"
        ) from exc
    _spans = Spans(tracer_provider)
    ENABLED = True


def disable_tracing() -> None:
    """Stop making spans (runs already executing finish their current spans)."""
    global ENABLED
    ENABLED = False


def _live() -> Spans:
    if _spans is None:  # a hook called with the flag off: a bug in the engine
        raise RuntimeError("pulseloop tracing hook called before enable_tracing()")
    return _spans


# hooks: each is called only when ENABLED -----------------------------------------------
async def run_pass(run: RunRecord, body: Awaitable[str]) -> str:
    """Await ``body`` (one pass over ``run``) inside the pass's span."""
    return await _live().run_pass(run, body)


def trigger_parent(org: str, run_id: str, loop: str) -> str | None:
    """A ``trigger`` span under the current one; its traceparent, to store on the run."""
    return _live().trigger(org, run_id, loop)


def attempt_started(run: RunRecord, step: str, attempt: int) -> Any:
    """Start a step attempt's span and make it current; pass it to :func:`attempt_ended`."""
    return _live().attempt_started(run, step, attempt)


def attempt_ended(handle: Any, error: BaseException | None) -> None:
    """End an attempt's span: completed, or failed with ``error``'s type."""
    _live().attempt_ended(handle, error)


def replayed(step: str, kind: str) -> None:
    """A step or wait returned its recorded result without running."""
    _live().replayed(step, kind)


def retrying(step: str, attempt: int, retry_at: float) -> None:
    """A failed attempt will be retried at ``retry_at`` (epoch seconds)."""
    _live().event("pulseloop.step.retry", {"pulseloop.step.name": step,
                                           "pulseloop.step.attempt": attempt,
                                           "pulseloop.retry_at": retry_at})  # fmt: skip


def waiting(name: str, kind: str, key: str | None, deadline_at: float | None) -> None:
    """A wait or sleep is pending: on ``key`` (a signal), until ``deadline_at``."""
    attributes: dict[str, Any] = {"pulseloop.wait.name": name, "pulseloop.wait.kind": kind}
    if key is not None:
        attributes["pulseloop.wait.on"] = key
    if deadline_at is not None:
        attributes["pulseloop.wait.deadline"] = deadline_at
    _live().event("pulseloop.wait", attributes)


def wait_resolved(name: str, kind: str, status: str) -> None:
    """A wait ended: ``completed`` (signal arrived, sleep over) or ``failed`` (timed out)."""
    _live().event("pulseloop.wait.resolved", {"pulseloop.wait.name": name,
                                              "pulseloop.wait.kind": kind,
                                              "pulseloop.wait.outcome": status})  # fmt: skip


def parked(wake_at: float | None, keys: Sequence[str]) -> None:
    """The pass ends with the run parked until ``wake_at`` or a signal on ``keys``."""
    attributes: dict[str, Any] = {"pulseloop.wait.on": list(keys)}
    if wake_at is not None:
        attributes["pulseloop.wake_at"] = wake_at
    _live().event("pulseloop.park", attributes)
