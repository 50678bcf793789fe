-- Read models: rebuilt from the event log at will. Each projection writes its
-- checkpoint in the same transaction as its rows.
CREATE TABLE projection_checkpoints (
    name        TEXT PRIMARY KEY,
    commit_id   BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The dashboard: one row per run, as of its latest event.
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    -- Position of the run's Queued event: the listing order and page cursor.
    seq             BIGINT NOT NULL UNIQUE,
    repository      TEXT NOT NULL,
    commit_sha      TEXT NOT NULL,
    platform        TEXT NOT NULL,
    trigger_kind    TEXT NOT NULL,
    branch          TEXT,
    pull_request    BIGINT,
    requested_by    TEXT,
    priority        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    stage           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    vm_name         TEXT,
    deadline_at     TIMESTAMPTZ,
    deadline_kind   TEXT,
    eligible_at     TIMESTAMPTZ,
    queued_at       TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    verdict         TEXT,
    passed          INTEGER,
    failed          INTEGER,
    samples_done    INTEGER NOT NULL,
    samples_total   INTEGER NOT NULL,
    superseded_by   TEXT,
    final_reason    TEXT,
    last_problem    TEXT,
    version         BIGINT NOT NULL,
    last_position   BIGINT NOT NULL
);
CREATE INDEX runs_repository ON runs (repository, seq);
CREATE INDEX runs_status ON runs (status, seq);
CREATE INDEX runs_pull_request ON runs (repository, pull_request, seq);
CREATE INDEX runs_commit ON runs (commit_sha);

-- The queue: non-final runs per platform.
CREATE TABLE queue_entries (
    run_id          TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL,
    platform        TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    stage           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    queued_at       TIMESTAMPTZ NOT NULL,
    waiting_since   TIMESTAMPTZ NOT NULL,
    eligible_at     TIMESTAMPTZ,
    deadline_at     TIMESTAMPTZ NOT NULL,
    deadline_kind   TEXT NOT NULL,
    vm_name         TEXT
);
CREATE INDEX queue_entries_platform ON queue_entries (platform, priority, seq);

CREATE TABLE platform_states (
    platform    TEXT PRIMARY KEY,
    paused      BOOLEAN NOT NULL,
    note        TEXT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL,
    changed_by  TEXT NOT NULL
);

-- The audit view: every event of every run, with who, why and when.
CREATE TABLE audit_events (
    position        BIGINT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    stream_version  BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT NOT NULL,
    actor           TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    causation_id    TEXT,
    recorded_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_events_run ON audit_events (run_id, stream_version);

-- Operators' API tokens, stored as SHA-256 of the secret.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    token_hash  TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
