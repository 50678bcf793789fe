-- Check runs (a GitHub App's alternative to commit statuses): the check
-- run's state GitHub should show (check:queued, check:in_progress,
-- check:success, check:failure, check:error, check:cancelled,
-- check:superseded once one was made; NULL for a run superseded before),
-- whether it was told, and GitHub's id of the check run.
-- Rows from before this migration count as told; a rebuild derives it from
-- the events, and the check run reporter only reports runs that are not
-- final or finished within the last day (a notice counts the others), so
-- switching to check runs never replays the history.
ALTER TABLE github_statuses ADD COLUMN desired_check TEXT;
ALTER TABLE github_statuses ADD COLUMN check_settled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE github_statuses ADD COLUMN check_run_id BIGINT;
CREATE INDEX github_statuses_checks_unsettled ON github_statuses (seq) WHERE NOT check_settled;
