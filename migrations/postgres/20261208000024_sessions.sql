-- People signed in through GitHub: a session per browser, found by the
-- SHA-256 of the random id in its cookie (never the id), with the token its
-- mutations must carry against cross-site requests, until it expires or its
-- person signs out.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    login       TEXT NOT NULL,
    github_id   BIGINT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
