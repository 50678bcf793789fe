-- The audit view indexes the runs' events without a copy of their data: the
-- log has it (the trail reads it by the stream's key), and the copy doubled
-- what a rebuild wrote. (One process serves a SQLite file, so no replica of
-- the previous build writes it during an upgrade.)
ALTER TABLE audit_events DROP COLUMN data;
