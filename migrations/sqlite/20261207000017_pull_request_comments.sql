-- Per pull request: its current head and that head's runs (comma-separated
-- ids), whether it is closed, and its one summary comment as written so far
-- (GitHub's id, the head it spoke for, the body's SHA-256), with the last
-- error and the head a permanent failure gave up on. The comment writer's
-- work list.
CREATE TABLE pull_request_comments (
    stream          TEXT PRIMARY KEY,
    repository      TEXT NOT NULL,
    number          BIGINT NOT NULL,
    head_seq        BIGINT NOT NULL,
    head_sha        TEXT NOT NULL,
    head_runs       TEXT NOT NULL,
    closed          BOOLEAN NOT NULL,
    comment_id      BIGINT,
    written_seq     BIGINT,
    written_sha256  TEXT,
    failed_seq      BIGINT,
    last_error      TEXT
);
