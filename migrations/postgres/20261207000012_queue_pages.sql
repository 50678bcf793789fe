-- The queue read in pages: a platform's waiting runs in the order they get a
-- VM, their count and the oldest wait, and the scheduler's next eligible run,
-- each from an index instead of a sort of every entry. Deadlines are looked
-- up by time on every manager pass.
DROP INDEX queue_entries_platform;
CREATE INDEX queue_entries_order ON queue_entries (platform, status, priority DESC, seq);
CREATE INDEX queue_entries_waiting_since ON queue_entries (platform, status, waiting_since);
CREATE INDEX queue_entries_deadline ON queue_entries (deadline_at);
CREATE INDEX queue_entries_eligible ON queue_entries (eligible_at) WHERE eligible_at IS NOT NULL;
