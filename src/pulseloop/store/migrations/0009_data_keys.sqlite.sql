-- Encryption at rest: each organization's data keys, each wrapped (AES-GCM) by the master
-- key, which never touches the database. A payload's ciphertext names the data key that
-- sealed it, so old keys stay here after a rotation: rows not yet re-encrypted still need
-- them. The current key of an organization is its newest.
CREATE TABLE data_keys (
    id         TEXT PRIMARY KEY,
    org        TEXT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX data_keys_org ON data_keys (org, created_at);
