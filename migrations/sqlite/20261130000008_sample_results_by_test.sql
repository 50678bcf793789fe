-- A regression test's history across runs: its page reads results by test.
CREATE INDEX sample_results_test ON sample_results (test_id);
