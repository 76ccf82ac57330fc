-- Recurring triggers (see docs/schedules.md). next_fire_at is NULL while a schedule is
-- paused or has passed its end date, so the due-check "next_fire_at <= now" reads only
-- the index entries that are due: O(due), whatever the number of schedules. Workers
-- claim due rows with FOR UPDATE SKIP LOCKED.
-- body is the event body every tick's run gets, stored as run inputs are.
CREATE TABLE schedules (
    org          text NOT NULL,
    id           text NOT NULL,
    loop         text NOT NULL,
    cron         text NOT NULL,
    tz           text NOT NULL,
    body         text NOT NULL,
    missed       text NOT NULL,
    start_at     double precision,
    end_at       double precision,
    paused       boolean NOT NULL DEFAULT false,
    next_fire_at double precision,
    last_fire_at double precision,
    last_run_id  text,
    source       text NOT NULL,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE INDEX schedules_due ON schedules (org, next_fire_at);

-- Run deadlines (Loop.run_timeout, trigger(run_timeout=...)): the instant a run still
-- unfinished is failed with RunTimeout, even while parked. The timer pass reads only due
-- entries of this index and clears each one it reads (the run failed, or had finished),
-- so it never rereads history.
ALTER TABLE runs ADD COLUMN deadline_at double precision;
CREATE INDEX runs_deadline ON runs (org, deadline_at) WHERE deadline_at IS NOT NULL;
