-- Organizations and their API keys. A key is stored only as its SHA-256; a revoked key
-- keeps its row (revoked_at) so operators can see what existed and when it stopped.
CREATE TABLE orgs (
    name       TEXT PRIMARY KEY,
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE keys (
    id         TEXT PRIMARY KEY,
    org        TEXT NOT NULL REFERENCES orgs (name),
    key_hash   TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX keys_org ON keys (org, created_at);
