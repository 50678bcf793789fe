-- runs(pullRequest: N) without a repository: the (repository, pull_request,
-- seq) index cannot serve it, and the query walked every run.
CREATE INDEX runs_by_pull_request ON runs (pull_request, seq) WHERE pull_request IS NOT NULL;
