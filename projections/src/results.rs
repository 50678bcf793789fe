//! The `sample_results` read model: each regression test's outcome in a run's
//! current attempt, judged with the domain's own rules against the run's
//! snapshot of the test. A retry starts the run's results afresh.

use std::sync::Arc;

use async_trait::async_trait;
use sp_domain::RunEvent;
use sp_domain::verdict::judge;
use sp_eventstore::{EventStore, RecordedEvent};

use crate::run_states::RunStates;
use crate::runner::{Projection, ProjectionError};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug)]
pub struct ResultsProjection {
    states: RunStates,
}

impl ResultsProjection {
    pub const NAME: &'static str = "results";

    pub fn new(store: Arc<dyn EventStore>) -> Self {
        ResultsProjection {
            states: RunStates::new(store),
        }
    }
}

#[async_trait]
impl Projection for ResultsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sample_results"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<String>, ProjectionError> {
        let Some(folded) = self.states.after(event).await? else {
            return Ok(None);
        };
        let Some(run) = folded.state.run.as_ref() else {
            return Ok(None);
        };
        let run_id = run.info.id.to_string();
        match &folded.event {
            RunEvent::RetryScheduled(_) => {
                on_tx!(tx, c => sqlx::query("DELETE FROM sample_results WHERE run_id = $1")
                    .bind(&run_id)
                    .execute(c)
                    .await?
                    .rows_affected());
            }
            RunEvent::SampleResult(e) => {
                let Some(test) = run.info.tests.iter().find(|t| t.id == e.result.test_id) else {
                    return Ok(None);
                };
                let mismatches = judge(test, Some(&e.result));
                let sql = "INSERT INTO sample_results (run_id, test_id, attempt, categories, passed, exit_code,
                               runtime_ms, timed_out, mismatches, outputs)
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                           ON CONFLICT (run_id, test_id) DO UPDATE SET attempt = excluded.attempt,
                               passed = excluded.passed, exit_code = excluded.exit_code,
                               runtime_ms = excluded.runtime_ms, timed_out = excluded.timed_out,
                               mismatches = excluded.mismatches, outputs = excluded.outputs";
                let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "[]".into());
                on_tx!(tx, c => sqlx::query(sql)
                    .bind(&run_id)
                    .bind(&e.result.test_id)
                    .bind(i32::try_from(e.attempt).unwrap_or(i32::MAX))
                    .bind(test.categories.join(","))
                    .bind(mismatches.is_empty())
                    .bind(e.result.exit_code)
                    .bind(i64::try_from(e.result.runtime_ms).unwrap_or(i64::MAX))
                    .bind(e.result.timed_out)
                    .bind(json(serde_json::to_string(&mismatches)))
                    .bind(json(serde_json::to_string(&e.result.outputs)))
                    .execute(c)
                    .await?
                    .rows_affected());
            }
            _ => return Ok(None),
        }
        Ok(Some(run_id))
    }
}
