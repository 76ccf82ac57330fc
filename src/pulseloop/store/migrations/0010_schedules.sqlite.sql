-- Recurring triggers (see docs/schedules.md). next_fire_at is NULL while a schedule is
-- paused or has passed its end date, so the due-check "next_fire_at <= now" reads only
-- the index entries that are due: O(due), whatever the number of schedules.
-- body is the event body every tick's run gets, stored as run inputs are.
CREATE TABLE schedules (
    org          TEXT NOT NULL,
    id           TEXT NOT NULL,
    loop         TEXT NOT NULL,
    cron         TEXT NOT NULL,
    tz           TEXT NOT NULL,
    body         TEXT NOT NULL,
    missed       TEXT NOT NULL,
    start_at     REAL,
    end_at       REAL,
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at REAL,
    last_fire_at REAL,
    last_run_id  TEXT,
    source       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (org, id)
) WITHOUT ROWID;
CREATE INDEX schedules_due ON schedules (org, next_fire_at);

-- Run deadlines (Loop.run_timeout, trigger(run_timeout=...)): the instant a run still
-- unfinished is failed with RunTimeout, even while parked. The timer pass reads only due
-- entries of this index and clears each one it reads (the run failed, or had finished),
-- so it never rereads history.
ALTER TABLE runs ADD COLUMN deadline_at REAL;
CREATE INDEX runs_deadline ON runs (org, deadline_at) WHERE deadline_at IS NOT NULL;
