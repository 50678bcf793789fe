//! The `runs` read model: one row per run, as of its latest event.

use async_trait::async_trait;

use std::collections::BTreeMap;

use crate::batch::{Counts, last_per_run, rows_per_statement, stored_statuses};
use crate::run_view::{RunOutcome, RunRow, RunStatus};
use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, Default)]
pub struct RunsProjection;

impl RunsProjection {
    pub const NAME: &'static str = "runs";
}

const INSERT: &str = "INSERT INTO runs (
    run_id, seq, repository, commit_sha, platform, trigger_kind, branch, pull_request, requested_by,
    priority, status, stage, attempt, vm_name, deadline_at, deadline_kind, eligible_at, queued_at,
    started_at, finished_at, verdict, passed, failed, samples_done, samples_total, superseded_by,
    final_reason, last_problem, version, last_position) ";
const COLUMNS: usize = 30;

const ON_CONFLICT: &str = " ON CONFLICT (run_id) DO UPDATE SET
    status = excluded.status, stage = excluded.stage, attempt = excluded.attempt,
    vm_name = excluded.vm_name, deadline_at = excluded.deadline_at,
    deadline_kind = excluded.deadline_kind, eligible_at = excluded.eligible_at,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    verdict = excluded.verdict, passed = excluded.passed, failed = excluded.failed,
    samples_done = excluded.samples_done, samples_total = excluded.samples_total,
    superseded_by = excluded.superseded_by, final_reason = excluded.final_reason,
    last_problem = excluded.last_problem, version = excluded.version,
    last_position = excluded.last_position";

const COUNTS: Counts = Counts {
    table: "run_counts",
    key: "outcome",
    count: "runs",
};

/// Move `run_counts` by what the batch does to each run: out of its stored
/// outcome, into its new one.
async fn count_changes(tx: &mut Tx<'_>, rows: &[&RunRow]) -> Result<(), ProjectionError> {
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.to_string()).collect();
    let stored = stored_statuses(
        tx,
        "SELECT platform, status, verdict FROM runs WHERE run_id IN (",
        &ids,
    )
    .await?;
    let mut moves: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (platform, status, verdict) in stored {
        let status = RunStatus::parse(&status).unwrap_or(RunStatus::Failed);
        let outcome = RunOutcome::of(status, verdict.as_deref());
        *moves
            .entry((platform, outcome.as_str().to_string()))
            .or_default() -= 1;
    }
    for row in rows {
        *moves
            .entry((row.platform.clone(), row.outcome().as_str().to_string()))
            .or_default() += 1;
    }
    COUNTS.apply(tx, moves).await?;
    Ok(())
}

#[async_trait]
impl Projection for RunsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["runs", "run_counts"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let rows: Vec<&RunRow> = last_per_run(steps)
            .into_iter()
            .map(|(_, run)| &run.row)
            .collect();
        count_changes(tx, &rows).await?;
        for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
            on_tx!(&mut *tx, c => {
                let mut q = sqlx::QueryBuilder::new(INSERT);
                q.push_values(chunk, |mut b, row| {
                    b.push_bind(row.run_id.to_string())
                        .push_bind(row.seq)
                        .push_bind(&row.repository)
                        .push_bind(&row.commit_sha)
                        .push_bind(&row.platform)
                        .push_bind(&row.trigger_kind)
                        .push_bind(&row.branch)
                        .push_bind(row.pull_request)
                        .push_bind(&row.requested_by)
                        .push_bind(row.priority)
                        .push_bind(&row.status)
                        .push_bind(&row.stage)
                        .push_bind(row.attempt)
                        .push_bind(&row.vm_name)
                        .push_bind(row.deadline_at)
                        .push_bind(&row.deadline_kind)
                        .push_bind(row.eligible_at)
                        .push_bind(row.queued_at)
                        .push_bind(row.started_at)
                        .push_bind(row.finished_at)
                        .push_bind(&row.verdict)
                        .push_bind(row.passed)
                        .push_bind(row.failed)
                        .push_bind(row.samples_done)
                        .push_bind(row.samples_total)
                        .push_bind(&row.superseded_by)
                        .push_bind(&row.final_reason)
                        .push_bind(&row.last_problem)
                        .push_bind(row.version)
                        .push_bind(row.last_position);
                });
                q.push(ON_CONFLICT);
                q.build().execute(c).await?.rows_affected()
            });
        }
        Ok(rows.iter().map(|r| r.run_id.to_string()).collect())
    }
}
