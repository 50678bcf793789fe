-- What GitHub should say about each run's commit, and what it has been told:
-- the work list of the status reporter.
CREATE TABLE github_statuses (
    run_id          TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL,
    repository      TEXT NOT NULL,
    commit_sha      TEXT NOT NULL,
    platform        TEXT NOT NULL,
    -- pending, success, failure or error; NULL when nothing is to be said
    -- (a superseded run must not overwrite its successor's status).
    desired_state   TEXT,
    description     TEXT NOT NULL,
    -- JSON list of [context, state] pairs GitHub was told or given up on.
    told            TEXT NOT NULL,
    -- The desired state was told (or given up on): nothing left to do.
    settled         INTEGER NOT NULL
);
CREATE INDEX github_statuses_commit ON github_statuses (repository, commit_sha, platform, seq);
