-- The audit view indexes the runs' events without a copy of their data: the
-- log has it (the trail reads it by the stream's key), and the copy doubled
-- what a rebuild wrote. The column stays, defaulted, while replicas of the
-- previous build (which still write and read it) may share this database
-- during an upgrade; a later migration drops it.
ALTER TABLE audit_events ALTER COLUMN data SET DEFAULT '';
