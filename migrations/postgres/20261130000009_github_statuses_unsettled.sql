-- The status reporter reads only what is not settled, on every change and
-- every second; settled rows stay for ever, so the scan must not see them.
CREATE INDEX github_statuses_unsettled ON github_statuses (seq) WHERE NOT settled;
