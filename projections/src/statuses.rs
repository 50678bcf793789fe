//! The `github_statuses` read model: for each run, the commit status GitHub
//! should show and what it has been told. The status reporter's work list.

use std::sync::Arc;

use async_trait::async_trait;
use sp_domain::{Final, Lifecycle, Run, Verdict};
use sp_eventstore::{EventStore, RecordedEvent};

use crate::run_states::RunStates;
use crate::runner::{Projection, ProjectionError};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug)]
pub struct StatusesProjection {
    states: RunStates,
}

impl StatusesProjection {
    pub const NAME: &'static str = "statuses";

    pub fn new(store: Arc<dyn EventStore>) -> Self {
        StatusesProjection {
            states: RunStates::new(store),
        }
    }
}

/// GitHub allows 140 characters of description.
fn short(text: &str) -> String {
    if text.chars().count() <= 140 {
        return text.to_string();
    }
    let cut: String = text.chars().take(139).collect();
    format!("{cut}…")
}

/// The commit state and description GitHub should show for a run; `None`
/// for a superseded run, whose successor speaks for the pull request.
pub fn desired(run: &Run) -> Option<(&'static str, String)> {
    Some(match &run.lifecycle {
        Lifecycle::Active { phase, .. } => {
            ("pending", format!("{}", phase.stage()).replace('_', " "))
        }
        Lifecycle::Final(Final::Completed { verdict, counts }) => match verdict {
            Verdict::Pass => (
                "success",
                format!("{} regression tests passed", counts.passed),
            ),
            Verdict::Fail => (
                "failure",
                format!(
                    "{} of {} regression tests failed",
                    counts.failed,
                    counts.passed + counts.failed
                ),
            ),
        },
        Lifecycle::Final(Final::Failed(reason)) => (
            "error",
            short(&format!("could not test: {}", reason.message)),
        ),
        Lifecycle::Final(Final::Cancelled { reason }) => {
            ("error", short(&format!("cancelled: {reason}")))
        }
        Lifecycle::Final(Final::Superseded { .. }) => return None,
    })
}

#[async_trait]
impl Projection for StatusesProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["github_statuses"]
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
        let (state, description) = match desired(run) {
            Some((s, d)) => (Some(s), d),
            None => (None, String::new()),
        };
        let told: Vec<&(String, String)> =
            run.reported.iter().chain(&run.status_abandoned).collect();
        // A run reports to one context (its platform's), so the state alone says.
        let settled = state.is_none_or(|s| told.iter().any(|(_, t)| t == s));
        let told = serde_json::to_string(&told).unwrap_or_else(|_| "[]".into());
        let sql = "INSERT INTO github_statuses (run_id, seq, repository, commit_sha, platform, desired_state, description, told, settled)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                   ON CONFLICT (run_id) DO UPDATE SET desired_state = excluded.desired_state,
                       description = excluded.description, told = excluded.told, settled = excluded.settled";
        let run_id = run.info.id.to_string();
        on_tx!(tx, c => sqlx::query(sql)
            .bind(&run_id)
            .bind(folded.seq)
            .bind(&run.info.repository)
            .bind(&run.info.commit_sha)
            .bind(run.info.platform.as_str())
            .bind(state)
            .bind(&description)
            .bind(&told)
            .bind(settled)
            .execute(c)
            .await?
            .rows_affected());
        Ok(Some(run_id))
    }
}
