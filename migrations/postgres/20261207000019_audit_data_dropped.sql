-- The audit view's copy of each event's data, unused since migration 14
-- (the trail reads the log) and kept only for replicas of the build before
-- it: no build that still writes it can share this database any more.
ALTER TABLE audit_events DROP COLUMN data;
