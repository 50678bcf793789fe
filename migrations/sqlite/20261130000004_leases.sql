-- Leadership of the process managers: the fencing token goes up by one each
-- time an instance takes over, and is recorded in the actor of what it does.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    token       BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
