-- Run ids are unique per organization, not globally: two clinics may both trigger a run
-- called `follow-up-42`, and neither learns of the other's. A run's history (steps,
-- attempts, waits, signals) and its lease refer to its internal `run_key`, unique across
-- organizations; it equals the id unless another organization took that id first. Rows
-- written before this migration keep their id as their key (ids were globally unique).
ALTER TABLE runs ADD COLUMN run_key text;
UPDATE runs SET run_key = id;
ALTER TABLE runs ALTER COLUMN run_key SET NOT NULL;
CREATE UNIQUE INDEX runs_run_key ON runs (run_key);
DROP INDEX runs_id;

-- A scan belongs to (org, run id, step): two organizations' runs of one id each provision
-- their own.
ALTER TABLE scans DROP CONSTRAINT scans_run_id_step_key;
ALTER TABLE scans ADD CONSTRAINT scans_org_run_id_step_key UNIQUE (org, run_id, step);
DROP INDEX scans_run;
CREATE INDEX scans_run ON scans (org, run_id, seq);
