-- VMs whose deletion the platform gave up on (`VmAbandoned`): why, and since
-- when, for /readyz and the dashboard until a person deletes them.
ALTER TABLE vms ADD COLUMN abandoned_at TEXT;
ALTER TABLE vms ADD COLUMN abandoned_reason TEXT;
