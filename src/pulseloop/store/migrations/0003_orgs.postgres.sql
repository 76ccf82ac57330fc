-- Organizations and their API keys. A key is stored only as its SHA-256; a revoked key
-- keeps its row (revoked_at) so operators can see what existed and when it stopped.
CREATE TABLE orgs (
    name       text PRIMARY KEY,
    created_at double precision NOT NULL
);

CREATE TABLE keys (
    id         text PRIMARY KEY,
    org        text NOT NULL REFERENCES orgs (name),
    key_hash   text NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    revoked_at double precision
);
CREATE INDEX keys_org ON keys (org, created_at);
