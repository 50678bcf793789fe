-- The audit view covers every stream, not only runs: catalogue, deliveries,
-- pull requests, the blocklist, platforms, notices and access. Each event's
-- one-line summary and subject (`test:<id>`, `sample:<sha>`, `github:<login>`,
-- `token:<name>`) are written with it; its data stays in the log. The model
-- keeps its name, `audit`, and rebuilds from the start into the new table.
DROP TABLE audit_events;
DELETE FROM projection_checkpoints WHERE name = 'audit';
CREATE TABLE audit_log (
    position        BIGINT PRIMARY KEY,
    stream_id       TEXT NOT NULL,
    stream_version  BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    causation_id    TEXT,
    recorded_at     TIMESTAMPTZ NOT NULL,
    subject         TEXT,
    summary         TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_log_stream ON audit_log (stream_id, stream_version);
CREATE INDEX audit_log_actor ON audit_log (actor, position);
CREATE INDEX audit_log_subject ON audit_log (subject, position);
CREATE INDEX audit_log_correlation ON audit_log (correlation_id);
