-- Nothing to do: SQLite dropped the audit view's copy of each event's data
-- in migration 14 (one process serves the file); PostgreSQL drops it now.
-- Kept so both backends have the same migrations.
SELECT 1;
