-- Observability (issue 12): the trace a run's spans belong to, the W3C traceparent of
-- the span that triggered it (engine/tracing.py). Random ids, nothing of a patient: not
-- sealed. (/metrics totals here come from the counters of 0004_flat_history.)
ALTER TABLE runs ADD COLUMN trace_parent TEXT;
