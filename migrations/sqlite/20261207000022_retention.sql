-- Retention's read model (`retention`): the files each run holds (its build
-- artifact and the outputs its tests produced, by SHA-256), which runs'
-- files of a kind are gone, and which files were deleted, by what policy.
CREATE TABLE run_files (
    run_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, key)
);
CREATE INDEX run_files_key ON run_files (kind, key);
CREATE TABLE retention_done (
    run_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    deleted     BIGINT NOT NULL,
    kept        BIGINT NOT NULL,
    deleted_at  TEXT NOT NULL,
    policy      TEXT NOT NULL,
    PRIMARY KEY (run_id, kind)
);
CREATE TABLE deleted_files (
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    deleted_at  TEXT NOT NULL,
    policy      TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
