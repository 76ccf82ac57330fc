-- Runs, their step records, every attempt, durable waits, signals and deploys.
-- Times are epoch seconds (double precision), as in the SQLite schema. JSON payloads are
-- text: they arrive encoded, and metadata must be echoed back byte for byte (jsonb would
-- reorder keys). The indexes that serve the ready set are in 0004.
CREATE TABLE runs (
    org              text NOT NULL,
    id               text NOT NULL,
    loop             text NOT NULL,
    status           text NOT NULL,
    input            text NOT NULL,
    output           text,
    error            text,
    generation       integer NOT NULL DEFAULT 0,
    history_len      integer NOT NULL DEFAULT 0,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    started_at       double precision,
    finished_at      double precision,
    wake_at          double precision,
    lease_owner      text,
    lease_expires_at double precision,
    PRIMARY KEY (org, id)
) WITH (fillfactor = 80);  -- room on the page for in-place (HOT) updates of a run's row
CREATE UNIQUE INDEX runs_id ON runs (id);
CREATE INDEX runs_list ON runs (org, created_at DESC, id DESC);

-- One row per step (or wait) that reached its final result. The replay record.
CREATE TABLE steps (
    run_id      text NOT NULL,
    name        text NOT NULL,
    seq         integer NOT NULL,
    kind        text NOT NULL,
    status      text NOT NULL,
    output      text,
    error       text,
    attempts    integer NOT NULL,
    started_at  double precision NOT NULL,
    finished_at double precision NOT NULL,
    version     text,
    PRIMARY KEY (run_id, name)
);

-- Every failed attempt of a step: history for operators, retry counting for the engine.
CREATE TABLE attempts (
    run_id      text NOT NULL,
    step        text NOT NULL,
    generation  integer NOT NULL,
    attempt     integer NOT NULL,
    status      text NOT NULL,
    started_at  double precision NOT NULL,
    finished_at double precision NOT NULL,
    error       text,
    retry_at    double precision,
    version     text,
    worker      text,
    PRIMARY KEY (run_id, step, generation, attempt)
);

-- A durable wait (sleep, event, scan) the run has reached and not yet resolved.
CREATE TABLE waits (
    run_id      text NOT NULL,
    name        text NOT NULL,
    seq         integer NOT NULL,
    kind        text NOT NULL,
    key         text,
    deadline_at double precision,
    created_at  double precision NOT NULL,
    PRIMARY KEY (run_id, name)
);

-- Something a run may wait for (an event, a scan's terminal status), buffered.
CREATE TABLE signals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,
    key         text NOT NULL,
    payload     text NOT NULL,
    created_at  double precision NOT NULL,
    consumed_by text
);
CREATE INDEX signals_run ON signals (run_id, key);

-- Which version (source hash) of each loop a worker served.
CREATE TABLE deploys (
    org        text NOT NULL,
    loop       text NOT NULL,
    version    text NOT NULL,
    first_seen double precision NOT NULL,
    last_seen  double precision NOT NULL,
    workers    integer NOT NULL DEFAULT 1,
    PRIMARY KEY (org, loop, version)
);
