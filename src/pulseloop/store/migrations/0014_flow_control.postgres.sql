-- Flow control (docs/flow-control.md): priorities among queued runs, per-key concurrency
-- limits, durable rate limits.
--
-- runs.flow_key is a keyed hash of (loop, concurrency key): never the key itself (it is
-- often a patient id). A keyed run holds a slot of its key while it is running, or paused
-- while its worker still holds it; queued, waiting (sleeps, scan waits) and finished runs
-- hold none. concurrency_slots keeps, per key, how many runs hold a slot and how many
-- are queued, maintained by a trigger on every status change so no code path (claim,
-- park, cancel, retry, reclaim, deadline) can forget it. A claim locks the keys it takes
-- from (FOR UPDATE SKIP LOCKED), so concurrent claimers never both fill one key's last
-- slot; see store/postgres/flow.py.
ALTER TABLE runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN flow_key text;
-- Unkeyed queued runs: highest priority first, then oldest (replaces runs_queued).
DROP INDEX runs_queued;
CREATE INDEX runs_ready ON runs (org, priority DESC, created_at)
    WHERE status = 'queued' AND flow_key IS NULL;
-- A key's queued runs in the same order.
CREATE INDEX runs_keyed ON runs (org, flow_key, priority DESC, created_at)
    WHERE status = 'queued' AND flow_key IS NOT NULL;

CREATE TABLE concurrency_slots (
    org       text NOT NULL,
    key       text NOT NULL,
    loop      text NOT NULL,
    lim       integer NOT NULL,
    held      integer NOT NULL DEFAULT 0,
    queued    integer NOT NULL DEFAULT 0,
    served_at double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (org, key)
);
-- Keys a claim may take from, least recently served first (no key starves another).
CREATE INDEX concurrency_open ON concurrency_slots (org, served_at)
    WHERE queued > 0 AND held < lim;
-- Every claim, park and finish of a keyed run rewrites its key's row (never a HOT update:
-- the counts are in the partial index's predicate): vacuum it after a few hundred dead
-- rows rather than 20 % of the table, so claims never wade through dead versions.
ALTER TABLE concurrency_slots SET (autovacuum_vacuum_scale_factor = 0,
                                   autovacuum_vacuum_threshold = 500,
                                   autovacuum_analyze_scale_factor = 0.05);

CREATE FUNCTION pulseloop_runs_slot() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_held integer := 0;
    d_queued integer := 0;
    served boolean := false;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        d_held := d_held
            - (OLD.status = 'running' OR (OLD.status = 'paused' AND OLD.lease_owner IS NOT NULL))::int;
        d_queued := d_queued - (OLD.status = 'queued')::int;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        d_held := d_held
            + (NEW.status = 'running' OR (NEW.status = 'paused' AND NEW.lease_owner IS NOT NULL))::int;
        d_queued := d_queued + (NEW.status = 'queued')::int;
        served := NEW.status = 'running' AND (TG_OP = 'INSERT' OR OLD.status <> 'running');
    END IF;
    IF d_held <> 0 OR d_queued <> 0 THEN
        UPDATE concurrency_slots SET held = held + d_held, queued = queued + d_queued,
            served_at = CASE WHEN served THEN NEW.updated_at ELSE served_at END
            WHERE org = COALESCE(NEW.org, OLD.org) AND key = COALESCE(NEW.flow_key, OLD.flow_key);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER runs_slot_insert AFTER INSERT ON runs FOR EACH ROW
    WHEN (NEW.flow_key IS NOT NULL) EXECUTE FUNCTION pulseloop_runs_slot();
CREATE TRIGGER runs_slot_update AFTER UPDATE OF status, lease_owner ON runs FOR EACH ROW
    WHEN (NEW.flow_key IS NOT NULL AND (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.lease_owner IS DISTINCT FROM NEW.lease_owner))
    EXECUTE FUNCTION pulseloop_runs_slot();
CREATE TRIGGER runs_slot_delete AFTER DELETE ON runs FOR EACH ROW
    WHEN (OLD.flow_key IS NOT NULL) EXECUTE FUNCTION pulseloop_runs_slot();

-- Rate limits: the permits granted in the current window of each (org, key), a sliding
-- log (a token bucket lets a full bucket plus its refill through within one window).
-- rate_keys holds one row per key, locked while a permit is decided, so processes on
-- several machines decide one at a time. key is a SHA-256 digest of the user's key.
CREATE TABLE rate_keys (
    org text NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (org, key)
);
CREATE TABLE rate_permits (
    org text NOT NULL,
    key text NOT NULL,
    at  double precision NOT NULL
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
    until  double precision NOT NULL,
    PRIMARY KEY (org, loop, kind, key)
);
