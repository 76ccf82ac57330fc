-- Re-encryption bookkeeping (docs/security.md): a worker re-encrypts older rows only when
-- some may exist, not at every start. data_keys.resealed_at: when a completed pass left
-- every payload of the key's organization under this key (NULL: not yet). An organization
-- whose only key is its first needs no pass; one with an unmarked newer key does (a
-- rotation). reseal_due holds a row while the database may hold plaintext payloads from
-- before encryption or rows no pass has looked at: set here for any database with
-- history (an upgrade), cleared by the first pass that completes.
ALTER TABLE data_keys ADD COLUMN resealed_at REAL;
CREATE TABLE reseal_due (
    reason TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO reseal_due (reason)
SELECT 'upgrade' WHERE EXISTS (SELECT 1 FROM runs) OR EXISTS (SELECT 1 FROM scans)
    OR EXISTS (SELECT 1 FROM schedules);
