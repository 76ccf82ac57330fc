-- Retention (docs/security.md): payloads of finished runs and terminal scans are purged
-- once they are older than their organization's policy (retention_days; NULL is the
-- default, 90 days). A purged row keeps its ids, statuses, step names and times, and
-- records when it was purged. Columns declared NOT NULL (a run's input, a scan's
-- metadata, a signal's payload) hold the JSON text 'null' once purged; the rest hold NULL.
--
-- The purge reads only the rows it may purge, oldest first, through partial indexes a
-- purged row leaves: each batch costs O(batch), however much history accumulates.
ALTER TABLE orgs ADD COLUMN retention_days INTEGER;
ALTER TABLE runs ADD COLUMN purged_at DOUBLE PRECISION;
ALTER TABLE scans ADD COLUMN purged_at DOUBLE PRECISION;
CREATE INDEX runs_purgeable ON runs (org, finished_at)
    WHERE finished_at IS NOT NULL AND purged_at IS NULL;
CREATE INDEX scans_purgeable ON scans (org, completed_at)
    WHERE completed_at IS NOT NULL AND purged_at IS NULL;
