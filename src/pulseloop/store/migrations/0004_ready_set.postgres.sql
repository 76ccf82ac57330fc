-- The ready set: every query a running system repeats reads only the rows it may act on,
-- through a partial index, so its cost is O(batch) however much history accumulates.
-- Claims: queued runs oldest first; running runs by lease expiry (dead workers' runs).
CREATE INDEX runs_queued ON runs (org, created_at) WHERE status = 'queued';
CREATE INDEX runs_leased ON runs (org, lease_expires_at) WHERE status = 'running';
-- Lease renewal finds a worker's runs without reading the rest.
CREATE INDEX runs_owner ON runs (lease_owner) WHERE lease_owner IS NOT NULL;
-- Timers: parked runs by wake time (sleeps, retry delays, wait deadlines).
CREATE INDEX runs_waking ON runs (org, wake_at) WHERE status = 'waiting';
-- Filtered list pages (by loop or by status), newest first.
CREATE INDEX runs_loop_list ON runs (org, loop, created_at DESC, id DESC);
CREATE INDEX runs_status_list ON runs (org, status, created_at DESC, id DESC);
-- Scan expiry reads open scans only (a finished scan has completed_at set).
CREATE INDEX scans_open ON scans (org, expires_at) WHERE completed_at IS NULL;
-- A run's unconsumed signals (what a wait or a parking run looks for).
CREATE INDEX signals_pending ON signals (run_id, key, id) WHERE consumed_by IS NULL;
-- /metrics reads step latencies since its last scrape.
CREATE INDEX steps_finished ON steps (finished_at) WHERE kind = 'do';
-- The hot table churns (every claim, park and finish rewrites a run's row): vacuum it
-- long before the default 20 % of dead rows, so claims never wade through bloat.
ALTER TABLE runs SET (autovacuum_vacuum_scale_factor = 0.01,
                      autovacuum_analyze_scale_factor = 0.02);
