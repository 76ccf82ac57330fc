-- A scan's accepted upload waiting for (or in) analysis: written in the same transaction
-- that moves the scan to `processing`, deleted in the one that records its outcome. Any
-- process with the vitals extra claims jobs with a lease, so an upload answered 202 is
-- analysed even if the process that accepted it dies the next instant. The table holds
-- only unfinished jobs: it stays as small as the backlog.
CREATE TABLE analysis_jobs (
    scan_id          TEXT PRIMARY KEY,
    org              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at REAL,
    created_at       REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX analysis_jobs_ready ON analysis_jobs (lease_expires_at, created_at);
