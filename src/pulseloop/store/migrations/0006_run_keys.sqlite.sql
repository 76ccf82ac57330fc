-- Run ids are unique per organization, not globally: two clinics may both trigger a run
-- called `follow-up-42`, and neither learns of the other's. A run's history (steps,
-- attempts, waits, signals) and its lease refer to its internal `run_key`, unique across
-- organizations; it equals the id unless another organization took that id first. Rows
-- written before this migration keep their id as their key (ids were globally unique).
ALTER TABLE runs ADD COLUMN run_key TEXT NOT NULL DEFAULT '';
UPDATE runs SET run_key = id;
CREATE UNIQUE INDEX runs_run_key ON runs (run_key);
DROP INDEX runs_id;

-- A scan belongs to (org, run id, step): two organizations' runs of one id each provision
-- their own. SQLite cannot drop a table constraint, so the table is rebuilt (its indexes
-- and the status-count triggers of 0004 with it).
CREATE TABLE scans_new (
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
    UNIQUE (org, run_id, step)
);
INSERT INTO scans_new (seq, org, id, run_id, step, token_hash, status, metadata, result,
                       failure_reason, created_at, updated_at, expires_at, completed_at)
    SELECT seq, org, id, run_id, step, token_hash, status, metadata, result, failure_reason,
           created_at, updated_at, expires_at, completed_at FROM scans;
DROP TABLE scans;
ALTER TABLE scans_new RENAME TO scans;
CREATE INDEX scans_run ON scans (org, run_id, seq);
CREATE INDEX scans_open ON scans (org, status, expires_at) WHERE completed_at IS NULL;
CREATE TRIGGER scans_count_insert AFTER INSERT ON scans BEGIN
    INSERT INTO status_counts (kind, status, n) VALUES ('scan', new.status, 1)
        ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scans_count_update AFTER UPDATE OF status ON scans
    WHEN old.status IS NOT new.status BEGIN
    UPDATE status_counts SET n = n - 1 WHERE kind = 'scan' AND status = old.status;
    INSERT INTO status_counts (kind, status, n) VALUES ('scan', new.status, 1)
        ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scans_count_delete AFTER DELETE ON scans BEGIN
    UPDATE status_counts SET n = n - 1 WHERE kind = 'scan' AND status = old.status;
END;
