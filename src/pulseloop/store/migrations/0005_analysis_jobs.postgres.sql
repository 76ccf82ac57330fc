-- A scan's accepted upload waiting for (or in) analysis: written in the same transaction
-- that moves the scan to `processing`, deleted in the one that records its outcome (see
-- connectors/analysis.py). Only unfinished jobs live here: the table stays as small as
-- the backlog, and claims take it with FOR UPDATE SKIP LOCKED.
CREATE TABLE analysis_jobs (
    scan_id          text PRIMARY KEY,
    org              text NOT NULL,
    kind             text NOT NULL,
    payload          text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at double precision,
    created_at       double precision NOT NULL
);
CREATE INDEX analysis_jobs_ready ON analysis_jobs (created_at);
