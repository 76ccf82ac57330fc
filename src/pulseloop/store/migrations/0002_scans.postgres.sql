-- Facial scans: one per (run, step) that provisioned it. The link token is stored only
-- as a hash; seq orders a run's scans (the latest is what wait_for_scan waits for).
CREATE TABLE scans (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org            text NOT NULL,
    id             text NOT NULL UNIQUE,
    run_id         text NOT NULL,
    step           text NOT NULL,
    token_hash     text NOT NULL UNIQUE,
    status         text NOT NULL,
    metadata       text NOT NULL,
    result         text,
    failure_reason text,
    created_at     double precision NOT NULL,
    updated_at     double precision NOT NULL,
    expires_at     double precision NOT NULL,
    completed_at   double precision,
    UNIQUE (run_id, step)
);
CREATE INDEX scans_run ON scans (run_id, seq);
