-- Retention deletes an organization's finished webhook deliveries (delivered or failed for
-- good) older than its retention period, oldest first (store/retention.py). This index
-- holds only finished rows, so a batch reads the due ones and no pending or newer row.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (org, finished_at)
    WHERE finished_at IS NOT NULL;
