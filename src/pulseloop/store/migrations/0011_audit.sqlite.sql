-- The audit trail: who (an API key id, "cli"), did what (read_run, trigger, cancel, ...),
-- to which object (kind + id), in which organization, when, from where. Ids only: never a
-- payload. Tamper-evident: each row's hash covers its content and its predecessor's hash
-- (one chain per organization, seq 1, 2, ...); audit_heads holds each chain's last seq and
-- hash, so deleting the newest rows shows too. `pulseloop audit verify` recomputes it all.
CREATE TABLE audit (
    org         TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          REAL NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    address     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (org, seq)
) WITHOUT ROWID;
CREATE INDEX audit_object ON audit (org, object_kind, object_id, seq);
CREATE INDEX audit_at ON audit (org, at);

CREATE TABLE audit_heads (
    org  TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID;

-- Append-only: the database itself refuses edits and deletes (someone with the file can
-- drop these triggers; the hash chain is what shows that they did).
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
