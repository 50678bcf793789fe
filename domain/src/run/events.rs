//! The events of a test run (stream `run-<id>`). Each carries the time it was
//! decided at and, where it moves the run on, the deadline of the next stage, so
//! a replay never needs a clock or today's policy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::{Ancestry, Deadline, ErrorClass, FailureReason, RunnerStage, Stage, Trigger};
use crate::ids::{Platform, RunId};
use crate::verdict::{Counts, RegressionTest, TestResult, Verdict};

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumCount,
    strum::VariantNames,
)]
pub enum RunEvent {
    Queued(Queued),
    Superseded(Superseded),
    Cancelled(Cancelled),
    ArtifactFetched(ArtifactFetched),
    ArtifactUnavailable(ArtifactUnavailable),
    VmRequested(VmRequested),
    VmCreated(VmCreated),
    VmCreateFailed(VmCreateFailed),
    Progress(Progress),
    SampleResult(SampleResult),
    TimedOut(TimedOut),
    RetryScheduled(RetryScheduled),
    VmDeleteRequested(VmDeleteRequested),
    VmDeleted(VmDeleted),
    VmDeleteFailed(VmDeleteFailed),
    VmAbandoned(VmAbandoned),
    Failed(Failed),
    Completed(Completed),
    StatusReported(StatusReported),
    ReportRefused(ReportRefused),
    StatusReportFailed(StatusReportFailed),
}

/// GitHub could not be told a status. Permanent failures are not tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReportFailed {
    pub at: DateTime<Utc>,
    pub context: String,
    pub state: String,
    pub class: ErrorClass,
    pub message: String,
}

/// A runner's report was not applied: from another attempt, or after the
/// run ended. Recorded so the refusal can be read, never applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRefused {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub reason: String,
}

/// A run was requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    pub at: DateTime<Utc>,
    pub run_id: RunId,
    /// `owner/name`.
    pub repository: String,
    pub commit_sha: String,
    pub platform: Platform,
    pub trigger: Trigger,
    /// Higher runs first; equal priorities run in queue order.
    #[serde(default)]
    pub priority: i32,
    /// The regression tests in scope, snapshotted.
    #[serde(default)]
    pub tests: Vec<RegressionTest>,
    /// The GitHub delivery that caused it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// What the commit descends from, for the comparison with earlier runs.
    #[serde(default, skip_serializing_if = "Ancestry::is_empty")]
    pub ancestry: Ancestry,
    /// Until when the build artifact may take to appear.
    pub deadline: Deadline,
}

/// A newer commit of the same pull request or branch replaced this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Superseded {
    pub at: DateTime<Utc>,
    pub by: RunId,
    pub reason: String,
}

/// An operator or a closed pull request stopped the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancelled {
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactFetched {
    pub at: DateTime<Utc>,
    pub size_bytes: u64,
    pub sha256: String,
    /// Where the platform stored it for the runner.
    pub location: String,
    /// Until when the run may wait for a VM slot.
    pub deadline: Deadline,
}

/// The artifact is not there: not yet (retryable), or never (permanent; a
/// `Failed` follows in the same decision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactUnavailable {
    pub at: DateTime<Utc>,
    pub class: ErrorClass,
    pub reason: String,
}

/// Intent to create a VM, recorded before the cloud is called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmRequested {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
    /// Sent to the cloud so that a retried create never makes a second VM.
    pub idempotency_key: String,
    pub deadline: Deadline,
    /// SHA-256 of the attempt's runner credential: reports must present it.
    #[serde(default)]
    pub runner_credential_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmCreated {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
    /// Until when the runner must report for the first time.
    pub deadline: Deadline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmCreateFailed {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
    pub class: ErrorClass,
    pub message: String,
}

/// A runner report; also the heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub stage: RunnerStage,
    #[serde(default)]
    pub message: String,
    pub done: u32,
    pub total: u32,
    pub deadline: Deadline,
}

/// One regression test's outcome; also a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub result: TestResult,
    pub deadline: Deadline,
}

/// A deadline passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedOut {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub stage: Stage,
    pub deadline: Deadline,
}

/// Another attempt will start no earlier than `not_before`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryScheduled {
    pub at: DateTime<Utc>,
    pub next_attempt: u32,
    pub not_before: DateTime<Utc>,
    pub reason: String,
    /// Until when the retry may wait for a VM slot.
    pub deadline: Deadline,
}

/// Compensation: this VM must go. Repeated by the process manager until `VmDeleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDeleteRequested {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
    pub reason: String,
}

/// The cloud confirmed the VM is gone (a 404 counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDeleted {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
}

/// Deleting a VM failed; the process manager tries again. Recorded so a VM
/// the cloud refuses to delete is visible, not only logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDeleteFailed {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
    pub class: ErrorClass,
    pub message: String,
}

/// The undo that could not finish: deleting this VM failed too often (or
/// for good), so the platform stops trying and a person must delete it.
/// Visible on `/readyz` and the dashboard until the VM is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmAbandoned {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub vm_name: String,
    /// Deletions tried.
    pub failures: u32,
    /// What a person needs to know: the last error, and what to do.
    pub reason: String,
}

/// Final: no verdict could be produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub at: DateTime<Utc>,
    pub reason: FailureReason,
}

/// Final: the runner finished and the tests were judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completed {
    pub at: DateTime<Utc>,
    pub attempt: u32,
    pub verdict: Verdict,
    pub counts: Counts,
}

/// GitHub has been told this, so it is never told twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReported {
    pub at: DateTime<Utc>,
    /// The status context or check run name, e.g. `CI - linux`.
    pub context: String,
    /// A commit status's state (pending, success, failure, error), or a
    /// check run's (`check:queued`, `check:in_progress`, `check:success`,
    /// `check:failure`, `check:error`, `check:cancelled`).
    pub state: String,
    #[serde(default)]
    pub description: String,
    /// The check run GitHub made for the run (check runs only): later
    /// states update it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_run_id: Option<u64>,
}

impl RunEvent {
    /// The event's type name as stored: the variant's name.
    pub fn type_name(&self) -> &'static str {
        self.into()
    }

    /// When it was decided.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            RunEvent::Queued(e) => e.at,
            RunEvent::Superseded(e) => e.at,
            RunEvent::Cancelled(e) => e.at,
            RunEvent::ArtifactFetched(e) => e.at,
            RunEvent::ArtifactUnavailable(e) => e.at,
            RunEvent::VmRequested(e) => e.at,
            RunEvent::VmCreated(e) => e.at,
            RunEvent::VmCreateFailed(e) => e.at,
            RunEvent::Progress(e) => e.at,
            RunEvent::SampleResult(e) => e.at,
            RunEvent::TimedOut(e) => e.at,
            RunEvent::RetryScheduled(e) => e.at,
            RunEvent::VmDeleteRequested(e) => e.at,
            RunEvent::VmDeleted(e) => e.at,
            RunEvent::VmDeleteFailed(e) => e.at,
            RunEvent::VmAbandoned(e) => e.at,
            RunEvent::Failed(e) => e.at,
            RunEvent::Completed(e) => e.at,
            RunEvent::StatusReported(e) => e.at,
            RunEvent::ReportRefused(e) => e.at,
            RunEvent::StatusReportFailed(e) => e.at,
        }
    }

    /// Final events end the run; exactly one is ever recorded.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RunEvent::Superseded(_)
                | RunEvent::Cancelled(_)
                | RunEvent::Failed(_)
                | RunEvent::Completed(_)
        )
    }

    /// Events still accepted after the final one: cleaning up and telling GitHub.
    pub fn is_cleanup_or_reporting(&self) -> bool {
        matches!(
            self,
            RunEvent::VmDeleteRequested(_)
                | RunEvent::VmDeleted(_)
                | RunEvent::VmDeleteFailed(_)
                | RunEvent::VmAbandoned(_)
                | RunEvent::StatusReported(_)
                | RunEvent::ReportRefused(_)
                | RunEvent::StatusReportFailed(_)
        )
    }
}
