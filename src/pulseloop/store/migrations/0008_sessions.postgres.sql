-- Dashboard sessions and failed sign-ins, shared by every server process of a deployment
-- (a restart or a second process keeps people signed in; a throttle holds across them).
-- A session is stored only as the SHA-256 of its cookie's token: a leaked database yields
-- no live session. ends_at = min(expires_at, last_seen_at + idle_s): expiry and idle
-- timeout in one indexed column that every lookup checks and the purge deletes by.
CREATE TABLE sessions (
    token_hash   text PRIMARY KEY,
    org          text NOT NULL,
    key_id       text NOT NULL REFERENCES keys (id),
    created_at   double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    expires_at   double precision NOT NULL,
    idle_s       double precision NOT NULL,
    ends_at      double precision NOT NULL
);
CREATE INDEX sessions_key ON sessions (key_id, created_at);
CREATE INDEX sessions_ends ON sessions (ends_at);

-- Revoking a key ends its sessions in the same transaction (lookups also refuse a revoked
-- key, so this is tidiness, not the check).
CREATE FUNCTION pulseloop_sessions_end_with_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions WHERE key_id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sessions_end_with_key AFTER UPDATE OF revoked_at ON keys
FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION pulseloop_sessions_end_with_key();

-- One row per sign-in attempt per name it counts against ("addr:<ip>", "key:<key id>"),
-- written before the key is checked and deleted if the key was right: what is left are
-- failures. Rows older than the throttle's window are purged in bounded batches.
CREATE TABLE sign_in_failures (
    attempt text NOT NULL,
    name    text NOT NULL,
    at      double precision NOT NULL,
    PRIMARY KEY (attempt, name)
);
CREATE INDEX sign_in_failures_name ON sign_in_failures (name, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);
