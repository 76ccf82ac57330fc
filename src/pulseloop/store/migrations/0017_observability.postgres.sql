-- Observability (issue 12). Two changes:
--
-- 1. The trace a run's spans belong to: the W3C traceparent of the span that triggered
--    it (engine/tracing.py). Random ids, nothing of a patient: not sealed.
ALTER TABLE runs ADD COLUMN trace_parent TEXT;

-- 2. /metrics totals without counting history. A scrape used to run count(*) GROUP BY
--    over every run and scan ever kept. Counters updated in place by triggers (what the
--    SQLite backend does: it has one writer) would make every status change of every
--    worker lock the same few rows until commit, and two transactions changing two
--    statuses in opposite orders deadlock. So triggers only append: each status change
--    inserts its +1/-1 rows into status_deltas (no index, no lock on anything shared),
--    and a fold (store/postgres/counts.py: at each scrape, and every minute in each
--    process, one process at a time) moves them into status_counts. A scrape reads
--    status_counts plus the deltas not folded yet: O(statuses + changes since the last
--    fold), whatever the history.
CREATE TABLE status_counts (
    kind   TEXT NOT NULL,
    status TEXT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (kind, status)
);
CREATE TABLE status_deltas (
    kind   TEXT NOT NULL,
    status TEXT NOT NULL,
    n      INTEGER NOT NULL
);
ALTER TABLE status_deltas SET (autovacuum_vacuum_scale_factor = 0.0,
                               autovacuum_vacuum_threshold = 1000);

CREATE FUNCTION pulseloop_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_deltas (kind, status, n) VALUES (TG_ARGV[0], NEW.status, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO status_deltas (kind, status, n) VALUES (TG_ARGV[0], OLD.status, -1);
    ELSE
        INSERT INTO status_deltas (kind, status, n)
            VALUES (TG_ARGV[0], OLD.status, -1), (TG_ARGV[0], NEW.status, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_count_insert AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION pulseloop_count_status('run');
CREATE TRIGGER runs_count_update AFTER UPDATE OF status ON runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION pulseloop_count_status('run');
CREATE TRIGGER runs_count_delete AFTER DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION pulseloop_count_status('run');
CREATE TRIGGER scans_count_insert AFTER INSERT ON scans
    FOR EACH ROW EXECUTE FUNCTION pulseloop_count_status('scan');
CREATE TRIGGER scans_count_update AFTER UPDATE OF status ON scans
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION pulseloop_count_status('scan');
CREATE TRIGGER scans_count_delete AFTER DELETE ON scans
    FOR EACH ROW EXECUTE FUNCTION pulseloop_count_status('scan');

-- Start from the rows already there. CREATE TRIGGER locked both tables against writes
-- until this migration commits, so no change falls between the count and the triggers.
INSERT INTO status_counts (kind, status, n)
    SELECT 'run', status, count(*) FROM runs GROUP BY status;
INSERT INTO status_counts (kind, status, n)
    SELECT 'scan', status, count(*) FROM scans GROUP BY status;
