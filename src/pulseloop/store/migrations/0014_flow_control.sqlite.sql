-- Flow control (docs/flow-control.md): priorities among queued runs, per-key concurrency
-- limits, durable rate limits.
--
-- runs.flow_key is a keyed hash of (loop, concurrency key): never the key itself (it is
-- often a patient id). A keyed run holds a slot of its key while it is running, or paused
-- while its worker still holds it; queued, waiting (sleeps, scan waits) and finished runs
-- hold none. concurrency_slots keeps, per key, how many runs hold a slot and how many
-- are queued, maintained by triggers on every status change so no code path (claim, park,
-- cancel, retry, reclaim, deadline) can forget it; a claim reads only keys with room and
-- queued work through a partial index, then each such key's oldest queued runs: O(batch).
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN flow_key TEXT;
-- Unkeyed queued runs: highest priority first, then oldest.
CREATE INDEX runs_ready ON runs (org, priority DESC, created_at, id)
    WHERE status = 'queued' AND flow_key IS NULL;
-- A key's queued runs in the same order.
CREATE INDEX runs_keyed ON runs (org, flow_key, priority DESC, created_at, id)
    WHERE status = 'queued' AND flow_key IS NOT NULL;

CREATE TABLE concurrency_slots (
    org       TEXT NOT NULL,
    key       TEXT NOT NULL,
    loop      TEXT NOT NULL,
    lim       INTEGER NOT NULL,
    held      INTEGER NOT NULL DEFAULT 0,
    queued    INTEGER NOT NULL DEFAULT 0,
    served_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (org, key)
) WITHOUT ROWID;
-- Keys a claim may take from, least recently served first (no key starves another).
CREATE INDEX concurrency_open ON concurrency_slots (org, served_at)
    WHERE queued > 0 AND held < lim;

CREATE TRIGGER runs_slot_insert AFTER INSERT ON runs WHEN new.flow_key IS NOT NULL BEGIN
    UPDATE concurrency_slots SET queued = queued + (new.status = 'queued'),
        held = held + (new.status = 'running')
        WHERE org = new.org AND key = new.flow_key;
END;
CREATE TRIGGER runs_slot_update AFTER UPDATE OF status, lease_owner ON runs
    WHEN new.flow_key IS NOT NULL BEGIN
    UPDATE concurrency_slots SET
        queued = queued + (new.status = 'queued') - (old.status = 'queued'),
        held = held
            + (new.status = 'running' OR (new.status = 'paused' AND new.lease_owner IS NOT NULL))
            - (old.status = 'running' OR (old.status = 'paused' AND old.lease_owner IS NOT NULL)),
        served_at = CASE WHEN new.status = 'running' AND old.status <> 'running'
            THEN new.updated_at ELSE served_at END
        WHERE org = new.org AND key = new.flow_key;
END;
CREATE TRIGGER runs_slot_delete AFTER DELETE ON runs WHEN old.flow_key IS NOT NULL BEGIN
    UPDATE concurrency_slots SET queued = queued - (old.status = 'queued'),
        held = held - (old.status = 'running'
            OR (old.status = 'paused' AND old.lease_owner IS NOT NULL))
        WHERE org = old.org AND key = old.flow_key;
END;

-- Rate limits: the permits granted in the current window of each (org, key), a sliding
-- log (a token bucket lets a full bucket plus its refill through within one window).
-- key is a SHA-256 digest of the user's key.
CREATE TABLE rate_permits (
    org TEXT NOT NULL,
    key TEXT NOT NULL,
    at  REAL NOT NULL
);
CREATE INDEX rate_permits_window ON rate_permits (org, key, at);

-- Debounce and dedupe windows on trigger: the run a (loop, kind, key) names until `until`.
-- key is a keyed hash (as runs.flow_key), never the key itself.
CREATE TABLE trigger_windows (
    org    TEXT NOT NULL,
    loop   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    key    TEXT NOT NULL,
    run_id TEXT NOT NULL,
    until  REAL NOT NULL,
    PRIMARY KEY (org, loop, kind, key)
);
