-- What each completed run's change did: its tests observed (JSON: test id to
-- passed, exit code, timed out, produced hashes) and classified against a
-- reference run that completed before it (closest ancestor, else the base
-- branch's latest), with the counts per class and, in words, which reference
-- was used or why there is none.
CREATE TABLE run_comparisons (
    run_id               TEXT PRIMARY KEY,
    -- The Completed event's place in the log: "latest" is in log order.
    commit_id            BIGINT NOT NULL,
    position             BIGINT NOT NULL,
    repository           TEXT NOT NULL,
    platform             TEXT NOT NULL,
    commit_sha           TEXT NOT NULL,
    -- A push run's branch: it is that branch's reference for later runs.
    pushed_branch        TEXT,
    observations         TEXT NOT NULL,
    reference_run        TEXT,
    reference_kind       TEXT,
    reference_commit     TEXT,
    reference_note       TEXT NOT NULL,
    broken               INTEGER NOT NULL,
    failing_differently  INTEGER NOT NULL,
    fixed                INTEGER NOT NULL,
    failing_identically  INTEGER NOT NULL,
    new_tests            INTEGER NOT NULL,
    no_reference         INTEGER NOT NULL,
    unchanged_pass       INTEGER NOT NULL
);
CREATE INDEX run_comparisons_commit ON run_comparisons (repository, platform, commit_sha);
CREATE INDEX run_comparisons_branch ON run_comparisons (repository, platform, pushed_branch, commit_id, position);
