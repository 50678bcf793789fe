-- Secrets the platform makes for itself on first start (the key runner
-- credentials are derived from), shared by every replica.
CREATE TABLE platform_keys (
    name        TEXT PRIMARY KEY,
    key         TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
