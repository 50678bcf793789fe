-- A contributor's custom runs, found by who queued them: their limits are
-- counted at each request.
CREATE INDEX runs_custom ON runs (requested_by, queued_at) WHERE trigger_kind = 'custom';
