//! The `github_statuses` read model: for each run, the commit status GitHub
//! should show, the check run state it should show (for a GitHub App), and
//! what it has been told. The status and check run reporters' work list.

use async_trait::async_trait;
use sp_domain::{Final, Lifecycle, Phase, Run, Verdict};

use crate::batch::{last_per_run, rows_per_statement};
use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, Default)]
pub struct StatusesProjection;

impl StatusesProjection {
    pub const NAME: &'static str = "statuses";
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
/// for a superseded run, whose successor speaks for the pull request, and
/// for a run GitHub does not hear of (a contributor's custom run).
pub fn desired(run: &Run) -> Option<(&'static str, String)> {
    if !run.info.trigger.reports_to_github() {
        return None;
    }
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

/// The check run state GitHub should show for a run (see the migration
/// `check_runs`); `None` for a run superseded before any was made.
pub fn desired_check(run: &Run) -> Option<&'static str> {
    if !run.info.trigger.reports_to_github() {
        return None;
    }
    Some(match &run.lifecycle {
        Lifecycle::Active { phase, .. } => match phase {
            Phase::Running { .. } => "check:in_progress",
            _ => "check:queued",
        },
        Lifecycle::Final(Final::Completed { verdict, .. }) => match verdict {
            Verdict::Pass => "check:success",
            Verdict::Fail => "check:failure",
        },
        Lifecycle::Final(Final::Failed(_)) => "check:error",
        Lifecycle::Final(Final::Cancelled { .. }) => "check:cancelled",
        // A check run belongs to its run (not to the commit, as a status
        // does): one made for a run that was then superseded is completed,
        // not left running; none is made for it otherwise.
        Lifecycle::Final(Final::Superseded { .. }) if run.check_run_id.is_some() => {
            "check:superseded"
        }
        Lifecycle::Final(Final::Superseded { .. }) => return None,
    })
}

const INSERT: &str = "INSERT INTO github_statuses (run_id, seq, repository, commit_sha, platform,
    desired_state, description, told, settled, desired_check, check_settled, check_run_id) ";
const COLUMNS: usize = 12;
const ON_CONFLICT: &str =
    " ON CONFLICT (run_id) DO UPDATE SET desired_state = excluded.desired_state,
    description = excluded.description, told = excluded.told, settled = excluded.settled,
    desired_check = excluded.desired_check, check_settled = excluded.check_settled,
    check_run_id = excluded.check_run_id";

/// One row of the model.
struct Row<'a> {
    run: &'a Run,
    seq: i64,
    state: Option<&'static str>,
    description: String,
    told: String,
    settled: bool,
    check: Option<&'static str>,
    check_settled: bool,
}

fn row(run: &Run, seq: i64) -> Row<'_> {
    let (state, description) = match desired(run) {
        Some((s, d)) => (Some(s), d),
        None => (None, String::new()),
    };
    let told: Vec<&(String, String)> = run.reported.iter().chain(&run.status_abandoned).collect();
    // A run reports to one context (its platform's), so the state alone says.
    let settled = state.is_none_or(|s| told.iter().any(|(_, t)| t == s));
    let check = desired_check(run);
    let check_settled = check.is_none_or(|s| told.iter().any(|(_, t)| t == s));
    Row {
        run,
        seq,
        state,
        description,
        told: serde_json::to_string(&told).unwrap_or_else(|_| "[]".into()),
        settled,
        check,
        check_settled,
    }
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
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let last = last_per_run(steps);
        let rows: Vec<Row<'_>> = last
            .iter()
            .filter_map(|(_, folded)| {
                Some(row(folded.state.as_ref()?.run.as_ref()?, folded.row.seq))
            })
            .collect();
        for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
            on_tx!(&mut *tx, c => {
                let mut q = sqlx::QueryBuilder::new(INSERT);
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.run.info.id.to_string())
                        .push_bind(r.seq)
                        .push_bind(&r.run.info.repository)
                        .push_bind(&r.run.info.commit_sha)
                        .push_bind(r.run.info.platform.as_str())
                        .push_bind(r.state)
                        .push_bind(&r.description)
                        .push_bind(&r.told)
                        .push_bind(r.settled)
                        .push_bind(r.check)
                        .push_bind(r.check_settled)
                        .push_bind(r.run.check_run_id.and_then(|id| i64::try_from(id).ok()));
                });
                q.push(ON_CONFLICT);
                q.build().execute(c).await?.rows_affected()
            });
        }
        Ok(rows.iter().map(|r| r.run.info.id.to_string()).collect())
    }
}
