-- Outbound notifications (docs/webhooks.md). An endpoint belongs to one organization and
-- subscribes to event types (events: comma-separated names). Its secret signs deliveries
-- and is sealed at rest like any payload (store/sealed/webhooks.py). A removed endpoint
-- keeps its row (deleted_at) so its delivery log still names it.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    org         TEXT NOT NULL,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    deleted_at  REAL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org) WHERE deleted_at IS NULL;

-- The outbox: a run's or scan's terminal transition inserts one row per subscribed
-- endpoint in its own transaction. subject + occurred_at name the transition, so a
-- transition written twice (a batch rerun after a lost reply) adds no second row.
-- Rows carry ids, statuses and times only, never patient payloads.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    org              TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    event            TEXT NOT NULL,
    subject          TEXT NOT NULL,
    run_id           TEXT,
    scan_id          TEXT,
    loop             TEXT,
    status           TEXT NOT NULL,
    occurred_at      REAL NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    last_status_code INTEGER,
    last_error       TEXT,
    finished_at      REAL,
    UNIQUE (endpoint_id, event, subject, occurred_at)
);
-- claims read only pending rows, soonest first
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (org, id);

-- One row per POST, for the delivery log (status code or error, how long it took).
CREATE TABLE webhook_attempts (
    delivery_id  INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    duration_ms  REAL NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
