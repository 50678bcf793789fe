-- Every VM the platform asked for, and where it is in its life: the work list
-- of the VM process manager and of reconciliation.
CREATE TABLE vms (
    vm_name             TEXT PRIMARY KEY,
    run_id              TEXT NOT NULL,
    platform            TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    -- requested, created, delete_requested, deleted
    status              TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL,
    requested_at        TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ,
    delete_requested_at TIMESTAMPTZ,
    deleted_at          TIMESTAMPTZ,
    delete_reason       TEXT,
    last_position       BIGINT NOT NULL
);
CREATE INDEX vms_status ON vms (status, platform);
CREATE INDEX vms_run ON vms (run_id);
