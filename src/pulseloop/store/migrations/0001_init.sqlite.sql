-- Runs, their step records, every attempt, durable waits, signals and deploys.
-- Times are epoch seconds (REAL). JSON payloads are TEXT.
CREATE TABLE runs (
    org              TEXT NOT NULL,
    id               TEXT NOT NULL,
    loop             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    generation       INTEGER NOT NULL DEFAULT 0,
    history_len      INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    wake_at          REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    PRIMARY KEY (org, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX runs_id ON runs (id);
CREATE INDEX runs_claim ON runs (org, status, lease_expires_at);
CREATE INDEX runs_wake ON runs (org, status, wake_at) WHERE status = 'waiting';
CREATE INDEX runs_list ON runs (org, created_at DESC);

-- One row per step (or wait) that reached its final result. The replay record.
CREATE TABLE steps (
    run_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    output      TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    version     TEXT,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Every attempt of a step: history for operators, retry counting for the engine.
CREATE TABLE attempts (
    run_id      TEXT NOT NULL,
    step        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    error       TEXT,
    retry_at    REAL,
    version     TEXT,
    worker      TEXT,
    PRIMARY KEY (run_id, step, generation, attempt)
) WITHOUT ROWID;

-- A durable wait (sleep, event, scan) the run has reached and not yet resolved.
-- The deadline is fixed when the wait is first reached: replays never extend it.
CREATE TABLE waits (
    run_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT,
    deadline_at REAL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Something a run may wait for (an event, a scan's terminal status). Buffered: a signal
-- sent before the wait is reached is consumed when it is.
CREATE TABLE signals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    consumed_by TEXT
);
CREATE INDEX signals_run ON signals (run_id, key, consumed_by);

-- Which version (source hash) of each loop a worker served.
CREATE TABLE deploys (
    org        TEXT NOT NULL,
    loop       TEXT NOT NULL,
    version    TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL,
    workers    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (org, loop, version)
) WITHOUT ROWID;
