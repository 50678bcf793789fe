-- Each regression test's outcome in a run's current attempt, judged against
-- the run's snapshot of the test: what the run page shows.
CREATE TABLE sample_results (
    run_id      TEXT NOT NULL,
    test_id     TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    categories  TEXT NOT NULL,
    passed      BOOLEAN NOT NULL,
    exit_code   INTEGER NOT NULL,
    runtime_ms  BIGINT NOT NULL,
    timed_out   BOOLEAN NOT NULL,
    -- JSON: why it failed (empty when it passed) and what each output was.
    mismatches  TEXT NOT NULL,
    outputs     TEXT NOT NULL,
    PRIMARY KEY (run_id, test_id)
);
