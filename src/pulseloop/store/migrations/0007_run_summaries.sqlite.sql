-- The loop's line for run lists (Loop.summary): the patient reference and outcome, as the
-- loop words them, so operators need not guess from raw outputs.
ALTER TABLE runs ADD COLUMN summary TEXT;
