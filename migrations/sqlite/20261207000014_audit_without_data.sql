-- The audit view indexes the runs' events without a copy of their data: the
-- log has it (read by the stream's own key), and the copy doubled what a
-- rebuild wrote.
ALTER TABLE audit_events DROP COLUMN data;
