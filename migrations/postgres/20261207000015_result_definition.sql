-- What each result was judged against (a hash of the test's definition:
-- sample, command, input, exit code, accepted outputs), so "flaky" means the same
-- commit and the same definition gave different results, not an accepted
-- output and a rerun; and the command line that reproduces the test by hand.
-- Results recorded before this are filled by `projections rebuild results`;
-- until then they share one empty definition, apart from newer results.
ALTER TABLE sample_results ADD COLUMN definition TEXT NOT NULL DEFAULT '';
ALTER TABLE sample_results ADD COLUMN reproduce TEXT NOT NULL DEFAULT '';
