-- Dashboard sessions and failed sign-ins, shared by every server process of a deployment
-- (a restart or a second process keeps people signed in; a throttle holds across them).
-- A session is stored only as the SHA-256 of its cookie's token: a leaked database yields
-- no live session. ends_at = min(expires_at, last_seen_at + idle_s): expiry and idle
-- timeout in one indexed column that every lookup checks and the purge deletes by.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    org          TEXT NOT NULL,
    key_id       TEXT NOT NULL REFERENCES keys (id),
    created_at   REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    expires_at   REAL NOT NULL,
    idle_s       REAL NOT NULL,
    ends_at      REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_key ON sessions (key_id, created_at);
CREATE INDEX sessions_ends ON sessions (ends_at);

-- Revoking a key ends its sessions in the same transaction (lookups also refuse a revoked
-- key, so this is tidiness, not the check).
CREATE TRIGGER sessions_end_with_key AFTER UPDATE OF revoked_at ON keys
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    DELETE FROM sessions WHERE key_id = NEW.id;
END;

-- One row per sign-in attempt per name it counts against ("addr:<ip>", "key:<key id>"),
-- written before the key is checked and deleted if the key was right: what is left are
-- failures. Rows older than the throttle's window are purged in bounded batches.
CREATE TABLE sign_in_failures (
    attempt TEXT NOT NULL,
    name    TEXT NOT NULL,
    at      REAL NOT NULL,
    PRIMARY KEY (attempt, name)
) WITHOUT ROWID;
CREATE INDEX sign_in_failures_name ON sign_in_failures (name, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);
