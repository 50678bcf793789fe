-- How many runs each platform has per outcome, kept by the runs model as
-- runs move: /metrics reads one row per (platform, outcome) instead of
-- counting every run ever tested at each scrape.
CREATE TABLE run_counts (
    platform    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    runs        BIGINT NOT NULL,
    PRIMARY KEY (platform, outcome)
);
INSERT INTO run_counts (platform, outcome, runs)
SELECT platform,
       CASE status
           WHEN 'completed' THEN CASE verdict WHEN 'pass' THEN 'pass' WHEN 'fail' THEN 'fail' ELSE 'error' END
           WHEN 'failed' THEN 'error'
           ELSE status
       END AS outcome,
       COUNT(*)
FROM runs GROUP BY 1, 2;
