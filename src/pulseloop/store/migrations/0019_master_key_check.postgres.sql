-- Encryption at rest: which master key wraps the data keys now, as a key-check value
-- (HMAC-SHA256 of a fixed label under the master key; never the key). Written at first
-- open and by every `pulseloop keys rotate-master-key`, in the same transaction as its
-- re-wrap: a process still holding an older master key sees the mismatch and refuses to
-- wrap or open data keys with it (docs/security.md). One row.
CREATE TABLE master_key_check (
    id         integer PRIMARY KEY CHECK (id = 1),
    kcv        text NOT NULL,
    set_at     double precision NOT NULL,
    rotated_at double precision
);
