-- The event log: the only source of truth.
CREATE TABLE events (
    -- Assigned at insert, so a slow transaction may commit a lower position
    -- after a higher one is visible; readers follow (tx_id, position) below
    -- the oldest running transaction instead (see sp-eventstore's postgres.rs).
    position        BIGINT GENERATED ALWAYS AS IDENTITY,
    tx_id           XID8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       TEXT NOT NULL,
    stream_version  BIGINT NOT NULL CHECK (stream_version > 0),
    event_id        UUID NOT NULL,
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version > 0),
    data            JSONB NOT NULL,
    metadata        JSONB NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    -- Optimistic concurrency: two writers of the same version, one wins.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    -- Idempotent appends: a retried batch finds its ids already here.
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    -- The order readers follow the log in; positions are unique by identity.
    CONSTRAINT events_pkey PRIMARY KEY (tx_id, position)
);
