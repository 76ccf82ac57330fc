-- Child runs (step.run_loop; docs/child-loops.md): a child names the run that started it
-- by key (what its end signals, and what a cancel walks down) and, for display, by id
-- and step. The partial index serves the recursive walk from a parent to its children.
ALTER TABLE runs ADD COLUMN parent_key TEXT;
ALTER TABLE runs ADD COLUMN parent_id TEXT;
ALTER TABLE runs ADD COLUMN parent_step TEXT;
CREATE INDEX runs_children ON runs (parent_key, created_at) WHERE parent_key IS NOT NULL;
