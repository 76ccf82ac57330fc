"""The spans themselves, built with the OpenTelemetry API (the ``otel`` extra).

Imported only by :func:`pulseloop.engine.tracing.enable_tracing`; the design record
(trace shape, why waits are events) is in :mod:`pulseloop.engine.tracing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pulseloop.store.records import RunRecord

INSTRUMENTATION = "pulseloop"
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(slots=True)
class _Pass:
    """The span of the pass executing in this task, and what it replayed."""

    span: trace.Span
    replayed: int = 0


_PASS: ContextVar[_Pass | None] = ContextVar("pulseloop_pass", default=None)


class Spans:
    """Makes pulseloop's spans with one tracer."""

    def __init__(self, tracer_provider: trace.TracerProvider | None) -> None:
        from pulseloop import __version__

        provider = tracer_provider or trace.get_tracer_provider()
        self.tracer = provider.get_tracer(INSTRUMENTATION, __version__)

    def trigger(self, org: str, run_id: str, loop: str) -> str | None:
        """A ``trigger`` span under the current span; its traceparent (None if invalid)."""
        span = self.tracer.start_span(
            f"trigger {loop}", kind=SpanKind.PRODUCER, attributes=_run_attributes(org, run_id, loop)
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        return carrier.get("traceparent")

    async def run_pass(self, run: RunRecord, body: Awaitable[str]) -> str:
        """Await one pass over ``run`` inside its span (current for the loop's code)."""
        attributes = _run_attributes(run.org, run.id, run.loop)
        attributes["pulseloop.run.attempt"] = run.generation + 1
        attributes["pulseloop.run.resumed"] = run.history_len > 0
        span = self.tracer.start_span(
            f"run {run.loop}", context=_parent(run), kind=SpanKind.CONSUMER, attributes=attributes
        )
        current = _Pass(span)
        pass_token = _PASS.set(current)
        token = context.attach(trace.set_span_in_context(span))
        try:
            status = await body
        except BaseException as exc:
            outcome = "crashed" if isinstance(exc, Exception) else "aborted"
            span.set_attribute("pulseloop.run.outcome", outcome)
            _error(span, exc)
            raise
        else:
            span.set_attribute("pulseloop.run.outcome", status)
            if status == "failed":
                span.set_status(StatusCode.ERROR, "the run failed")
            return status
        finally:
            span.set_attribute("pulseloop.run.replayed_steps", current.replayed)
            context.detach(token)
            _PASS.reset(pass_token)
            span.end()

    def attempt_started(self, run: RunRecord, step: str, attempt: int) -> Any:
        """A step attempt's span, current until :meth:`attempt_ended`."""
        attributes = _run_attributes(run.org, run.id, run.loop)
        attributes["pulseloop.step.name"] = step
        attributes["pulseloop.step.attempt"] = attempt
        span = self.tracer.start_span(f"step {step}", attributes=attributes)
        return span, context.attach(trace.set_span_in_context(span))

    def attempt_ended(self, handle: Any, error: BaseException | None) -> None:
        """End the attempt's span with its outcome."""
        span, token = handle
        context.detach(token)
        if error is None:
            span.set_attribute("pulseloop.step.outcome", "completed")
        else:
            outcome = "failed" if isinstance(error, Exception) else "cancelled"
            span.set_attribute("pulseloop.step.outcome", outcome)
            _error(span, error)
        span.end()

    def replayed(self, step: str, kind: str) -> None:
        """Mark a step that returned its recorded result on the pass's span."""
        current = _PASS.get()
        if current is not None:
            current.replayed += 1
            attributes = {"pulseloop.step.name": step, "pulseloop.step.kind": kind}
            current.span.add_event("pulseloop.step.replayed", attributes)

    def event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """An event on the pass's span (waits, parks, retries)."""
        current = _PASS.get()
        if current is not None:
            current.span.add_event(name, attributes)


def _run_attributes(org: str, run_id: str, loop: str) -> dict[str, Any]:
    return {"pulseloop.run.id": run_id, "pulseloop.loop": loop, "pulseloop.org": org}


def _error(span: trace.Span, exc: BaseException) -> None:
    """The error's type only: messages may hold patient data and are never exported."""
    kind = type(exc).__name__
    span.set_attribute("error.type", kind)
    span.set_status(StatusCode.ERROR, kind)


def _parent(run: RunRecord) -> context.Context:
    """The context every pass of ``run`` starts from: its stored trigger, else derived."""
    if run.trace_parent:
        return _PROPAGATOR.extract({"traceparent": run.trace_parent}, context=context.Context())
    # one trace per run without storage: ids from the run's key (unique across orgs)
    digest = hashlib.blake2b(run.key.encode(), digest_size=24, person=b"pulseloop.trace").digest()
    derived = SpanContext(
        trace_id=int.from_bytes(digest[:16]) or 1,
        span_id=int.from_bytes(digest[16:]) or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(derived), context.Context())
