//! A run as the dashboard shows it, derived from the domain's own state, so the
//! read model can never disagree with `decide` about what a run is.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sp_domain::{Final, Lifecycle, Phase, RunId, RunState, Trigger, Verdict};

/// The dashboard's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Superseded,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Superseded,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Superseded => "superseded",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// What a person asks of a run first, in one word: a completed run whose
/// tests failed is a `Fail`, not a success of the machinery, and a run that
/// could not be tested at all (no build, no VM, a timeout) is an `Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Queued,
    Running,
    Pass,
    Fail,
    Error,
    Cancelled,
    Superseded,
}

impl RunOutcome {
    pub const ALL: [RunOutcome; 7] = [
        RunOutcome::Queued,
        RunOutcome::Running,
        RunOutcome::Pass,
        RunOutcome::Fail,
        RunOutcome::Error,
        RunOutcome::Cancelled,
        RunOutcome::Superseded,
    ];

    /// Its name in metrics and in `run_counts` (the migration that fills
    /// that table spells the same mapping in SQL).
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Queued => "queued",
            RunOutcome::Running => "running",
            RunOutcome::Pass => "pass",
            RunOutcome::Fail => "fail",
            RunOutcome::Error => "error",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Superseded => "superseded",
        }
    }

    /// From the row's status and verdict.
    pub fn of(status: RunStatus, verdict: Option<&str>) -> RunOutcome {
        match status {
            RunStatus::Queued => RunOutcome::Queued,
            RunStatus::Running => RunOutcome::Running,
            RunStatus::Completed => match verdict {
                Some("pass") => RunOutcome::Pass,
                Some("fail") => RunOutcome::Fail,
                // Completed without a verdict it can name: not good news.
                _ => RunOutcome::Error,
            },
            RunStatus::Failed => RunOutcome::Error,
            RunStatus::Cancelled => RunOutcome::Cancelled,
            RunStatus::Superseded => RunOutcome::Superseded,
        }
    }

    /// The row's status and, where it decides, its verdict: what a filter
    /// on this outcome matches.
    pub fn row_match(self) -> (RunStatus, Option<&'static str>) {
        match self {
            RunOutcome::Queued => (RunStatus::Queued, None),
            RunOutcome::Running => (RunStatus::Running, None),
            RunOutcome::Pass => (RunStatus::Completed, Some("pass")),
            RunOutcome::Fail => (RunStatus::Completed, Some("fail")),
            RunOutcome::Error => (RunStatus::Failed, None),
            RunOutcome::Cancelled => (RunStatus::Cancelled, None),
            RunOutcome::Superseded => (RunStatus::Superseded, None),
        }
    }
}

/// One row of the `runs` read model.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RunRow {
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    pub seq: i64,
    pub repository: String,
    pub commit_sha: String,
    pub platform: String,
    pub trigger_kind: String,
    pub branch: Option<String>,
    pub pull_request: Option<i64>,
    pub requested_by: Option<String>,
    pub priority: i32,
    pub status: String,
    pub stage: String,
    pub attempt: i32,
    pub vm_name: Option<String>,
    pub deadline_at: Option<DateTime<Utc>>,
    pub deadline_kind: Option<String>,
    pub eligible_at: Option<DateTime<Utc>>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verdict: Option<String>,
    pub passed: Option<i32>,
    pub failed: Option<i32>,
    pub samples_done: i32,
    pub samples_total: i32,
    pub superseded_by: Option<String>,
    pub final_reason: Option<String>,
    pub last_problem: Option<String>,
    pub version: i64,
    pub last_position: i64,
}

fn to_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

impl RunRow {
    /// What a person asks of this run first.
    pub fn outcome(&self) -> RunOutcome {
        let status = RunStatus::parse(&self.status).unwrap_or(RunStatus::Failed);
        RunOutcome::of(status, self.verdict.as_deref())
    }

    /// The row for a run's state. `seq` is the position of its Queued event,
    /// `last_position` the position of the latest event folded in.
    pub fn from_state(state: &RunState, seq: i64, last_position: i64) -> Option<RunRow> {
        let run = state.run.as_ref()?;
        let info = &run.info;
        let (trigger_kind, branch, pull_request, requested_by) = match &info.trigger {
            Trigger::Push { branch } => ("push", Some(branch.clone()), None, None),
            Trigger::PullRequest { number, head_ref } => (
                "pull_request",
                Some(head_ref.clone()).filter(|b| !b.is_empty()),
                i64::try_from(*number).ok(),
                None,
            ),
            Trigger::Manual { requested_by, .. } => {
                ("manual", None, None, Some(requested_by.clone()))
            }
            Trigger::Custom { login, .. } => ("custom", None, None, Some(login.clone())),
        };
        let mut row = RunRow {
            run_id: info.id,
            seq,
            repository: info.repository.clone(),
            commit_sha: info.commit_sha.clone(),
            platform: info.platform.to_string(),
            trigger_kind: trigger_kind.to_string(),
            branch,
            pull_request,
            requested_by,
            priority: info.priority,
            status: String::new(),
            stage: state.stage().map(|s| s.as_str()).unwrap_or("").to_string(),
            attempt: to_i32(run.attempt),
            vm_name: None,
            deadline_at: None,
            deadline_kind: None,
            eligible_at: None,
            queued_at: info.queued_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            verdict: None,
            passed: None,
            failed: None,
            samples_done: to_i32(run.results.len()),
            samples_total: to_i32(info.tests.len()),
            superseded_by: None,
            final_reason: None,
            last_problem: run.last_problem.clone(),
            version: i64::try_from(state.version).unwrap_or(i64::MAX),
            last_position,
        };
        let status = match &run.lifecycle {
            Lifecycle::Active { phase, deadline } => {
                row.deadline_at = Some(deadline.at);
                row.deadline_kind = Some(deadline.kind.as_str().to_string());
                row.vm_name = phase.vm_name().map(str::to_string);
                match phase {
                    Phase::AwaitingArtifact => RunStatus::Queued,
                    Phase::AwaitingVm { eligible_at } => {
                        row.eligible_at = Some(*eligible_at);
                        RunStatus::Queued
                    }
                    Phase::Running { done, total, .. } => {
                        row.samples_done = to_i32(*done).max(row.samples_done);
                        row.samples_total = to_i32(*total).max(row.samples_total);
                        RunStatus::Running
                    }
                    Phase::ProvisioningVm { .. } | Phase::Booting { .. } => RunStatus::Running,
                }
            }
            Lifecycle::Final(end) => match end {
                Final::Completed { verdict, counts } => {
                    row.verdict = Some(
                        match verdict {
                            Verdict::Pass => "pass",
                            Verdict::Fail => "fail",
                        }
                        .to_string(),
                    );
                    row.passed = Some(to_i32(counts.passed));
                    row.failed = Some(to_i32(counts.failed));
                    RunStatus::Completed
                }
                Final::Failed(reason) => {
                    row.final_reason = Some(reason.message.clone());
                    RunStatus::Failed
                }
                Final::Superseded { by, reason } => {
                    row.superseded_by = Some(by.to_string());
                    row.final_reason = Some(reason.clone());
                    RunStatus::Superseded
                }
                Final::Cancelled { reason } => {
                    row.final_reason = Some(reason.clone());
                    RunStatus::Cancelled
                }
            },
        };
        row.status = status.as_str().to_string();
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_filter_matches_exactly_the_runs_of_that_outcome() {
        for outcome in [
            RunOutcome::Queued,
            RunOutcome::Running,
            RunOutcome::Pass,
            RunOutcome::Fail,
            RunOutcome::Error,
            RunOutcome::Cancelled,
            RunOutcome::Superseded,
        ] {
            let (status, verdict) = outcome.row_match();
            assert_eq!(RunOutcome::of(status, verdict), outcome);
        }
        // A completed run's tests decide; a run that ended before them is an error.
        assert_eq!(
            RunOutcome::of(RunStatus::Completed, Some("fail")),
            RunOutcome::Fail
        );
        assert_eq!(RunOutcome::of(RunStatus::Failed, None), RunOutcome::Error);
        assert_eq!(
            RunOutcome::of(RunStatus::Completed, None),
            RunOutcome::Error
        );
    }
}
