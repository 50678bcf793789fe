-- How many runs each platform has in the queue, per status, kept by the
-- queue model as runs come and go: the queue page's count reads one row
-- instead of counting every waiting run.
CREATE TABLE queue_counts (
    platform    TEXT NOT NULL,
    status      TEXT NOT NULL,
    entries     BIGINT NOT NULL,
    PRIMARY KEY (platform, status)
);
INSERT INTO queue_counts (platform, status, entries)
SELECT platform, status, COUNT(*) FROM queue_entries GROUP BY platform, status;

-- The running runs (at most the platforms' capacities) without walking the
-- waiting ones.
CREATE INDEX queue_entries_running ON queue_entries (platform, priority DESC, seq)
    WHERE status = 'running';
