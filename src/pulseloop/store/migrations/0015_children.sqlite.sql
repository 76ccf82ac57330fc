-- Child runs (step.run_loop; docs/child-loops.md): a child names the run that started it
-- by key (what its end signals, and what a cancel walks down) and, for display, by id
-- and step. The partial index serves the recursive walk from a parent to its children.
ALTER TABLE runs ADD COLUMN parent_key TEXT;
ALTER TABLE runs ADD COLUMN parent_id TEXT;
ALTER TABLE runs ADD COLUMN parent_step TEXT;
CREATE INDEX runs_children ON runs (parent_key, created_at) WHERE parent_key IS NOT NULL;
-- A parent's waits for children not yet ended (kind 'child'; 'child-ended' once the child
-- ended): a child's end finds its parent's wait, and "is any child still awaited?" is
-- answered, with one probe each, however many children the parent fanned out to.
CREATE INDEX waits_open_children ON waits (run_id, key) WHERE kind = 'child';
