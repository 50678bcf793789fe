//! What can be asked of a run, and why it may be refused.

use chrono::{DateTime, Utc};

use super::types::{Ancestry, ErrorClass, RunnerStage, Stage, Trigger};
use crate::ids::{Platform, RunId};
use crate::verdict::{RegressionTest, TestResult};

#[derive(Debug, Clone, PartialEq)]
pub struct QueueRun {
    pub run_id: RunId,
    pub repository: String,
    pub commit_sha: String,
    pub platform: Platform,
    pub trigger: Trigger,
    pub priority: i32,
    pub tests: Vec<RegressionTest>,
    pub delivery_id: Option<String>,
    pub ancestry: Ancestry,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunCommand {
    Queue(QueueRun),
    Supersede {
        by: RunId,
        reason: String,
    },
    Cancel {
        reason: String,
    },
    RecordArtifactFetched {
        size_bytes: u64,
        sha256: String,
        location: String,
    },
    RecordArtifactUnavailable {
        class: ErrorClass,
        reason: String,
    },
    /// The scheduler gives this run a VM slot. The attempt's runner
    /// credential is handed to the VM; only its hash is recorded.
    RequestVm {
        runner_credential_sha256: String,
    },
    /// A runner's report was refused (another attempt's, or after the end).
    RecordRefusedReport {
        attempt: u32,
        reason: String,
    },
    RecordVmCreated {
        attempt: u32,
        vm_name: String,
    },
    RecordVmCreateFailed {
        attempt: u32,
        vm_name: String,
        class: ErrorClass,
        message: String,
    },
    RecordProgress {
        attempt: u32,
        stage: RunnerStage,
        message: String,
        done: u32,
        total: u32,
    },
    RecordSampleResult {
        attempt: u32,
        result: TestResult,
    },
    /// The runner reports it has run everything.
    Finish {
        attempt: u32,
    },
    /// The runner could not go on (bad artifact, disk full).
    ReportRunnerFailure {
        attempt: u32,
        class: ErrorClass,
        message: String,
    },
    /// The timer found the run's deadline due.
    FireDeadline,
    /// Reconciliation found the current attempt's VM gone (preempted, deleted by hand).
    ReportVmVanished {
        attempt: u32,
        vm_name: String,
    },
    /// Reconciliation or an operator wants a VM gone.
    RequestVmDelete {
        vm_name: String,
        reason: String,
    },
    RecordVmDeleted {
        vm_name: String,
    },
    RecordVmDeleteFailed {
        vm_name: String,
        class: ErrorClass,
        message: String,
    },
    RecordStatusReported {
        context: String,
        state: String,
        description: String,
        /// Check runs only: the check run GitHub made or updated.
        check_run_id: Option<u64>,
    },
    RecordStatusReportFailed {
        context: String,
        state: String,
        class: ErrorClass,
        message: String,
    },
}

impl RunCommand {
    pub fn name(&self) -> &'static str {
        match self {
            RunCommand::Queue(_) => "queue",
            RunCommand::Supersede { .. } => "supersede",
            RunCommand::Cancel { .. } => "cancel",
            RunCommand::RecordArtifactFetched { .. } => "record artifact fetched",
            RunCommand::RecordArtifactUnavailable { .. } => "record artifact unavailable",
            RunCommand::RequestVm { .. } => "request VM",
            RunCommand::RecordRefusedReport { .. } => "record refused report",
            RunCommand::RecordVmCreated { .. } => "record VM created",
            RunCommand::RecordVmCreateFailed { .. } => "record VM create failed",
            RunCommand::RecordProgress { .. } => "record progress",
            RunCommand::RecordSampleResult { .. } => "record sample result",
            RunCommand::Finish { .. } => "finish",
            RunCommand::ReportRunnerFailure { .. } => "report runner failure",
            RunCommand::FireDeadline => "fire deadline",
            RunCommand::ReportVmVanished { .. } => "report VM vanished",
            RunCommand::RequestVmDelete { .. } => "request VM delete",
            RunCommand::RecordVmDeleted { .. } => "record VM deleted",
            RunCommand::RecordVmDeleteFailed { .. } => "record VM delete failed",
            RunCommand::RecordStatusReported { .. } => "record status reported",
            RunCommand::RecordStatusReportFailed { .. } => "record status report failed",
        }
    }
}

/// Why a command was refused. Each is a rule of the domain, not a failure of
/// the machinery: callers reject, ignore or report it, they never retry it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no such run")]
    RunNotFound,
    #[error("the run is already queued")]
    AlreadyQueued,
    #[error("the run is already {outcome}: {command} is not accepted after its final event")]
    RunFinal {
        outcome: &'static str,
        command: &'static str,
    },
    #[error("the report is from attempt {reported}, but the run is on attempt {current}")]
    StaleAttempt { current: u32, reported: u32 },
    #[error("{command} does not apply while the run is at stage {stage}")]
    WrongStage { stage: Stage, command: &'static str },
    #[error("the deadline is not due until {at}")]
    DeadlineNotDue { at: DateTime<Utc> },
    #[error("the run may not get a VM before {at} (retry backoff)")]
    NotYetEligible { at: DateTime<Utc> },
    #[error("status {state:?} was already reported for context {context:?}")]
    AlreadyReported { context: String, state: String },
    #[error("the run has no VM named {0:?}")]
    UnknownVm(String),
    #[error(
        "a different result for regression test {test_id:?} was already recorded for this attempt"
    )]
    ResultAlreadyRecorded { test_id: String },
    #[error("invalid command: {0}")]
    Invalid(String),
}
