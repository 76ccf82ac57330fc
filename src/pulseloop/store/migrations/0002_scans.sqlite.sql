-- Facial scans: one per (run, step) that provisioned it. The link token is stored only
-- as a hash; the row id orders a run's scans (the latest is what wait_for_scan waits for).
CREATE TABLE scans (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    org            TEXT NOT NULL,
    id             TEXT NOT NULL UNIQUE,
    run_id         TEXT NOT NULL,
    step           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    result         TEXT,
    failure_reason TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    expires_at     REAL NOT NULL,
    completed_at   REAL,
    UNIQUE (run_id, step)
);
CREATE INDEX scans_run ON scans (run_id, seq);
CREATE INDEX scans_expiry ON scans (org, status, expires_at);
