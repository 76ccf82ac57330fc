-- The audit trail: who (an API key id, "cli"), did what (read_run, trigger, cancel, ...),
-- to which object (kind + id), in which organization, when, from where. Ids only: never a
-- payload. Tamper-evident: each row's hash covers its content and its predecessor's hash
-- (one chain per organization, seq 1, 2, ...); audit_heads holds each chain's last seq and
-- hash, so deleting the newest rows shows too. `pulseloop audit verify` recomputes it all.
-- Appends lock their organization's audit_heads row (FOR UPDATE): one chain, no forks.
CREATE TABLE audit (
    org         text NOT NULL,
    seq         bigint NOT NULL,
    at          double precision NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    object_kind text NOT NULL,
    object_id   text NOT NULL,
    address     text NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    PRIMARY KEY (org, seq)
);
CREATE INDEX audit_object ON audit (org, object_kind, object_id, seq);
CREATE INDEX audit_at ON audit (org, at);

CREATE TABLE audit_heads (
    org  text PRIMARY KEY,
    seq  bigint NOT NULL,
    hash text NOT NULL
);

-- Append-only: the database itself refuses edits and deletes (someone with the owner's
-- rights can drop these triggers; the hash chain is what shows that they did).
CREATE FUNCTION pulseloop_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION pulseloop_audit_append_only();
