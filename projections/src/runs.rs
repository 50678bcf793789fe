//! The `runs` read model: one row per run, as of its latest event.

use std::sync::Arc;

use async_trait::async_trait;
use sp_eventstore::{EventStore, RecordedEvent};

use crate::run_states::RunStates;
use crate::run_view::RunRow;
use crate::runner::{Projection, ProjectionError};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug)]
pub struct RunsProjection {
    states: RunStates,
}

impl RunsProjection {
    pub const NAME: &'static str = "runs";

    pub fn new(store: Arc<dyn EventStore>) -> Self {
        RunsProjection {
            states: RunStates::new(store),
        }
    }
}

const UPSERT: &str = "INSERT INTO runs (
    run_id, seq, repository, commit_sha, platform, trigger_kind, branch, pull_request, requested_by,
    priority, status, stage, attempt, vm_name, deadline_at, deadline_kind, eligible_at, queued_at,
    started_at, finished_at, verdict, passed, failed, samples_done, samples_total, superseded_by,
    final_reason, last_problem, version, last_position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
        $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)
ON CONFLICT (run_id) DO UPDATE SET
    status = excluded.status, stage = excluded.stage, attempt = excluded.attempt,
    vm_name = excluded.vm_name, deadline_at = excluded.deadline_at,
    deadline_kind = excluded.deadline_kind, eligible_at = excluded.eligible_at,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    verdict = excluded.verdict, passed = excluded.passed, failed = excluded.failed,
    samples_done = excluded.samples_done, samples_total = excluded.samples_total,
    superseded_by = excluded.superseded_by, final_reason = excluded.final_reason,
    last_problem = excluded.last_problem, version = excluded.version,
    last_position = excluded.last_position";

#[async_trait]
impl Projection for RunsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["runs"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<String>, ProjectionError> {
        let Some(folded) = self.states.after(event).await? else {
            return Ok(None);
        };
        let Some(row) = RunRow::from_state(&folded.state, folded.seq, event.position) else {
            return Ok(None);
        };
        on_tx!(tx, c => {
            sqlx::query(UPSERT)
                .bind(row.run_id.to_string())
                .bind(row.seq)
                .bind(&row.repository)
                .bind(&row.commit_sha)
                .bind(&row.platform)
                .bind(&row.trigger_kind)
                .bind(&row.branch)
                .bind(row.pull_request)
                .bind(&row.requested_by)
                .bind(row.priority)
                .bind(&row.status)
                .bind(&row.stage)
                .bind(row.attempt)
                .bind(&row.vm_name)
                .bind(row.deadline_at)
                .bind(&row.deadline_kind)
                .bind(row.eligible_at)
                .bind(row.queued_at)
                .bind(row.started_at)
                .bind(row.finished_at)
                .bind(&row.verdict)
                .bind(row.passed)
                .bind(row.failed)
                .bind(row.samples_done)
                .bind(row.samples_total)
                .bind(&row.superseded_by)
                .bind(&row.final_reason)
                .bind(&row.last_problem)
                .bind(row.version)
                .bind(row.last_position)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(Some(row.run_id.to_string()))
    }
}
