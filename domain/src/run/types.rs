//! Small value types shared by the run's events, state and commands.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What caused a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Push {
        branch: String,
    },
    PullRequest {
        number: u64,
        #[serde(default)]
        head_ref: String,
    },
    Manual {
        requested_by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A contributor's own run of a commit of their repository (a fork of
    /// the tested one), with the tests they chose. It tells GitHub
    /// nothing: the platform speaks for the tested repository only.
    Custom {
        /// The GitHub login of who queued it.
        login: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl Trigger {
    /// Whether GitHub hears of the run (statuses, check runs, comments).
    pub fn reports_to_github(&self) -> bool {
        !matches!(self, Trigger::Custom { .. })
    }
}

/// Where a commit comes from, as far as GitHub told us when the run was
/// queued: what its results are compared with. Nothing here is guessed; what
/// GitHub did not say is left empty, and the comparison says "no reference".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestry {
    /// The branch the change is measured against: a push's own branch, a
    /// pull request's base branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_branch: Option<String>,
    /// Commits this one descends from, nearest first: a push's earlier
    /// commits and the branch's previous head (`before`), a pull request's
    /// base commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<String>,
}

impl Ancestry {
    pub fn is_empty(&self) -> bool {
        self.base_branch.is_none() && self.ancestors.is_empty()
    }
}

/// Which limit a deadline enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    ArtifactWait,
    QueueWait,
    VmCreate,
    Boot,
    Heartbeat,
    WholeRun,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::ArtifactWait => "artifact_wait",
            DeadlineKind::QueueWait => "queue_wait",
            DeadlineKind::VmCreate => "vm_create",
            DeadlineKind::Boot => "boot",
            DeadlineKind::Heartbeat => "heartbeat",
            DeadlineKind::WholeRun => "whole_run",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            DeadlineKind::ArtifactWait => "waiting for the build artifact",
            DeadlineKind::QueueWait => "waiting in the queue for a VM",
            DeadlineKind::VmCreate => "waiting for the cloud to create the VM",
            DeadlineKind::Boot => "waiting for the runner's first report",
            DeadlineKind::Heartbeat => "waiting for the runner's next report",
            DeadlineKind::WholeRun => "running the tests",
        }
    }
}

/// The time by which a non-final run must move on, and which limit it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub at: DateTime<Utc>,
    pub kind: DeadlineKind,
}

/// How a failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Try again soon: capacity, stockout, timeouts, 5xx, artifact not there yet.
    Retryable,
    /// Quota exhausted: try again, later than for an ordinary retryable error.
    Quota,
    /// Trying again cannot help: bad configuration, build failed, artifact expired.
    Permanent,
}

/// Where a run failed, whether it was the infrastructure or the setup, and what a
/// person can do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    pub stage: Stage,
    pub class: ErrorClass,
    /// A sentence for a person: what happened and what to do.
    pub message: String,
}

/// The run-level stage, as shown on the dashboard and named in timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    AwaitingArtifact,
    AwaitingVm,
    ProvisioningVm,
    Booting,
    Preparing,
    Testing,
    Finished,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AwaitingArtifact => "awaiting_artifact",
            Stage::AwaitingVm => "awaiting_vm",
            Stage::ProvisioningVm => "provisioning_vm",
            Stage::Booting => "booting",
            Stage::Preparing => "preparing",
            Stage::Testing => "testing",
            Stage::Finished => "finished",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage a runner says it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerStage {
    Preparing,
    Testing,
}
