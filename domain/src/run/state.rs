//! A run's state, folded from its events by `evolve`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::events::RunEvent;
use super::types::{Ancestry, Deadline, ErrorClass, FailureReason, RunnerStage, Stage, Trigger};
use crate::ids::{Platform, RunId};
use crate::verdict::{Counts, RegressionTest, TestResult, Verdict};

/// The folded state of one run stream. `version` counts the events applied, so
/// it is the expected version for the next append.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    pub version: u64,
    /// `None` until the run is queued.
    pub run: Option<Run>,
}

/// A run that exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    pub lifecycle: Lifecycle,
    /// The current attempt, from 1.
    pub attempt: u32,
    pub artifact: Option<Artifact>,
    /// Every VM ever requested for this run, by name.
    pub vms: BTreeMap<String, VmRecord>,
    /// Results reported by the current attempt, by regression test id.
    /// Shared like the tests: copied only when a result is added.
    pub results: Arc<BTreeMap<String, TestResult>>,
    /// When the current attempt's VM came up (or first reported): the whole-run clock.
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// Statuses GitHub has been told, as (context, state).
    pub reported: Vec<(String, String)>,
    /// Statuses given up on after a permanent failure, as (context, state).
    pub status_abandoned: Vec<(String, String)>,
    /// The check run GitHub made for this run, once told (check runs only).
    pub check_run_id: Option<u64>,
    /// The latest problem that did not end the run (a failed attempt, a missing artifact).
    pub last_problem: Option<String>,
    /// When the first VM was requested.
    pub started_at: Option<DateTime<Utc>>,
    /// When the final event was recorded.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What the run is about; fixed when it is queued.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: RunId,
    pub repository: String,
    pub commit_sha: String,
    pub platform: Platform,
    pub trigger: Trigger,
    pub priority: i32,
    /// The tests in scope, shared: a run's state is copied for every
    /// command, and this is the largest part of it.
    pub tests: Arc<[RegressionTest]>,
    pub delivery_id: Option<String>,
    pub ancestry: Ancestry,
    pub queued_at: DateTime<Utc>,
}

impl RunInfo {
    /// The test in scope with this id (see [`crate::verdict::find_test`]).
    pub fn test(&self, id: &str) -> Option<&RegressionTest> {
        crate::verdict::find_test(&self.tests, id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub size_bytes: u64,
    pub sha256: String,
    pub location: String,
}

/// Either the run is still moving, and then it has a deadline, or it has ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Lifecycle {
    Active { phase: Phase, deadline: Deadline },
    Final(Final),
}

/// Where a non-final run is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    AwaitingArtifact,
    /// Ready for a VM from `eligible_at` (later than now after a retry's backoff).
    AwaitingVm {
        eligible_at: DateTime<Utc>,
    },
    ProvisioningVm {
        vm_name: String,
    },
    Booting {
        vm_name: String,
    },
    Running {
        vm_name: String,
        stage: RunnerStage,
        done: u32,
        total: u32,
        last_report_at: DateTime<Utc>,
    },
}

/// How a run ended. Exactly one per run.
#[derive(Debug, Clone, PartialEq)]
pub enum Final {
    Completed { verdict: Verdict, counts: Counts },
    Failed(FailureReason),
    Superseded { by: RunId, reason: String },
    Cancelled { reason: String },
}

impl Final {
    pub fn name(&self) -> &'static str {
        match self {
            Final::Completed { .. } => "completed",
            Final::Failed(_) => "failed",
            Final::Superseded { .. } => "superseded",
            Final::Cancelled { .. } => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRecord {
    pub attempt: u32,
    pub status: VmStatus,
    /// SHA-256 of the runner credential handed to this VM.
    pub credential_sha256: String,
    /// Deletions that failed since it was asked to go.
    pub delete_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmStatus {
    /// Asked for; it may or may not exist yet.
    Requested,
    Created,
    /// Must be deleted; the process manager keeps trying until `Deleted`.
    DeleteRequested,
    /// Could not be deleted: a person must delete it (`VmAbandoned` says why).
    /// It may still exist; reconciliation records it deleted once it is gone.
    Abandoned,
    Deleted,
}

impl VmStatus {
    /// A VM that may exist and nobody has asked to delete yet.
    pub fn is_live(self) -> bool {
        matches!(self, VmStatus::Requested | VmStatus::Created)
    }
}

impl Phase {
    pub fn stage(&self) -> Stage {
        match self {
            Phase::AwaitingArtifact => Stage::AwaitingArtifact,
            Phase::AwaitingVm { .. } => Stage::AwaitingVm,
            Phase::ProvisioningVm { .. } => Stage::ProvisioningVm,
            Phase::Booting { .. } => Stage::Booting,
            Phase::Running {
                stage: RunnerStage::Preparing,
                ..
            } => Stage::Preparing,
            Phase::Running {
                stage: RunnerStage::Testing,
                ..
            } => Stage::Testing,
        }
    }

    /// The VM the current attempt runs on, once requested.
    pub fn vm_name(&self) -> Option<&str> {
        match self {
            Phase::ProvisioningVm { vm_name }
            | Phase::Booting { vm_name }
            | Phase::Running { vm_name, .. } => Some(vm_name),
            Phase::AwaitingArtifact | Phase::AwaitingVm { .. } => None,
        }
    }
}

impl RunState {
    pub fn is_final(&self) -> bool {
        matches!(
            self.run.as_ref().map(|r| &r.lifecycle),
            Some(Lifecycle::Final(_))
        )
    }

    /// The pending deadline; `None` only for a run that does not exist or has ended.
    pub fn deadline(&self) -> Option<Deadline> {
        match self.run.as_ref().map(|r| &r.lifecycle) {
            Some(Lifecycle::Active { deadline, .. }) => Some(*deadline),
            _ => None,
        }
    }

    pub fn stage(&self) -> Option<Stage> {
        self.run.as_ref().map(|r| match &r.lifecycle {
            Lifecycle::Active { phase, .. } => phase.stage(),
            Lifecycle::Final(_) => Stage::Finished,
        })
    }

    /// Apply one recorded event. Total: history is never rejected, only decisions are.
    pub fn evolve(mut self, event: &RunEvent) -> RunState {
        self.version += 1;
        if let RunEvent::Queued(q) = event {
            if self.run.is_none() {
                self.run = Some(Run {
                    info: RunInfo {
                        id: q.run_id,
                        repository: q.repository.clone(),
                        commit_sha: q.commit_sha.clone(),
                        platform: q.platform.clone(),
                        trigger: q.trigger.clone(),
                        priority: q.priority,
                        tests: Arc::from(q.tests.as_slice()),
                        delivery_id: q.delivery_id.clone(),
                        ancestry: q.ancestry.clone(),
                        queued_at: q.at,
                    },
                    lifecycle: Lifecycle::Active {
                        phase: Phase::AwaitingArtifact,
                        deadline: q.deadline,
                    },
                    attempt: 1,
                    artifact: None,
                    vms: BTreeMap::new(),
                    results: Arc::default(),
                    attempt_started_at: None,
                    reported: Vec::new(),
                    status_abandoned: Vec::new(),
                    check_run_id: None,
                    last_problem: None,
                    started_at: None,
                    finished_at: None,
                });
            }
            return self;
        }
        if let Some(run) = self.run.as_mut() {
            run.apply(event);
        }
        self
    }
}

impl Run {
    /// The attempt whose runner credential has this hash, if any.
    pub fn attempt_with_credential(&self, sha256: &str) -> Option<u32> {
        self.vms
            .values()
            .find(|vm| !vm.credential_sha256.is_empty() && vm.credential_sha256 == sha256)
            .map(|vm| vm.attempt)
    }

    fn activate(&mut self, phase: Phase, deadline: Deadline) {
        if !matches!(self.lifecycle, Lifecycle::Final(_)) {
            self.lifecycle = Lifecycle::Active { phase, deadline };
        }
    }

    fn finish(&mut self, end: Final, at: DateTime<Utc>) {
        if !matches!(self.lifecycle, Lifecycle::Final(_)) {
            self.lifecycle = Lifecycle::Final(end);
            self.finished_at = Some(at);
        }
    }

    fn set_vm(&mut self, name: &str, attempt: u32, status: VmStatus) {
        let vm = self.vms.entry(name.to_string()).or_insert(VmRecord {
            attempt,
            status,
            credential_sha256: String::new(),
            delete_failures: 0,
        });
        vm.attempt = attempt;
        vm.status = status;
    }

    fn apply(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Queued(_) => {}
            RunEvent::Superseded(e) => self.finish(
                Final::Superseded {
                    by: e.by,
                    reason: e.reason.clone(),
                },
                e.at,
            ),
            RunEvent::Cancelled(e) => self.finish(
                Final::Cancelled {
                    reason: e.reason.clone(),
                },
                e.at,
            ),
            RunEvent::ArtifactFetched(e) => {
                self.artifact = Some(Artifact {
                    size_bytes: e.size_bytes,
                    sha256: e.sha256.clone(),
                    location: e.location.clone(),
                });
                self.activate(Phase::AwaitingVm { eligible_at: e.at }, e.deadline);
            }
            RunEvent::ArtifactUnavailable(e) => self.last_problem = Some(e.reason.clone()),
            RunEvent::VmRequested(e) => {
                self.started_at.get_or_insert(e.at);
                self.set_vm(&e.vm_name, e.attempt, VmStatus::Requested);
                if let Some(vm) = self.vms.get_mut(&e.vm_name) {
                    vm.credential_sha256 = e.runner_credential_sha256.clone();
                }
                self.activate(
                    Phase::ProvisioningVm {
                        vm_name: e.vm_name.clone(),
                    },
                    e.deadline,
                );
            }
            RunEvent::VmCreated(e) => {
                self.set_vm(&e.vm_name, e.attempt, VmStatus::Created);
                let provisioning_this_vm = matches!(
                    &self.lifecycle,
                    Lifecycle::Active { phase: Phase::ProvisioningVm { vm_name }, .. } if *vm_name == e.vm_name
                );
                if provisioning_this_vm {
                    self.attempt_started_at = Some(e.at);
                    self.activate(
                        Phase::Booting {
                            vm_name: e.vm_name.clone(),
                        },
                        e.deadline,
                    );
                }
            }
            RunEvent::VmCreateFailed(e) => self.last_problem = Some(e.message.clone()),
            RunEvent::Progress(e) => {
                self.report_received(e.at);
                if let Lifecycle::Active { phase, .. } = &self.lifecycle
                    && let Some(vm_name) = phase.vm_name()
                {
                    let vm_name = vm_name.to_string();
                    self.activate(
                        Phase::Running {
                            vm_name,
                            stage: e.stage,
                            done: e.done,
                            total: e.total,
                            last_report_at: e.at,
                        },
                        e.deadline,
                    );
                }
            }
            RunEvent::SampleResult(e) => {
                self.report_received(e.at);
                Arc::make_mut(&mut self.results).insert(e.result.test_id.clone(), e.result.clone());
                let done = u32::try_from(self.results.len()).unwrap_or(u32::MAX);
                let total = u32::try_from(self.info.tests.len()).unwrap_or(u32::MAX);
                if let Lifecycle::Active { phase, .. } = &self.lifecycle
                    && let Some(vm_name) = phase.vm_name()
                {
                    let (done, total) = match phase {
                        Phase::Running {
                            done: d, total: t, ..
                        } => (done.max(*d), total.max(*t)),
                        _ => (done, total),
                    };
                    let vm_name = vm_name.to_string();
                    self.activate(
                        Phase::Running {
                            vm_name,
                            stage: RunnerStage::Testing,
                            done,
                            total,
                            last_report_at: e.at,
                        },
                        e.deadline,
                    );
                }
            }
            RunEvent::TimedOut(e) => {
                self.last_problem = Some(format!(
                    "timed out {} (deadline {})",
                    e.deadline.kind.describe(),
                    e.deadline.at.to_rfc3339()
                ));
            }
            RunEvent::RetryScheduled(e) => {
                self.attempt = e.next_attempt;
                self.results = Arc::default();
                self.attempt_started_at = None;
                self.last_problem = Some(e.reason.clone());
                self.activate(
                    Phase::AwaitingVm {
                        eligible_at: e.not_before,
                    },
                    e.deadline,
                );
            }
            RunEvent::VmDeleteRequested(e) => {
                let already_gone = self
                    .vms
                    .get(&e.vm_name)
                    .is_some_and(|vm| vm.status == VmStatus::Deleted);
                if !already_gone {
                    self.set_vm(&e.vm_name, e.attempt, VmStatus::DeleteRequested);
                }
            }
            RunEvent::VmDeleted(e) => self.set_vm(&e.vm_name, e.attempt, VmStatus::Deleted),
            RunEvent::VmDeleteFailed(e) => {
                if let Some(vm) = self.vms.get_mut(&e.vm_name) {
                    vm.delete_failures += 1;
                }
            }
            RunEvent::VmAbandoned(e) => self.set_vm(&e.vm_name, e.attempt, VmStatus::Abandoned),
            RunEvent::Failed(e) => self.finish(Final::Failed(e.reason.clone()), e.at),
            RunEvent::Completed(e) => self.finish(
                Final::Completed {
                    verdict: e.verdict,
                    counts: e.counts.clone(),
                },
                e.at,
            ),
            RunEvent::StatusReported(e) => {
                self.reported.push((e.context.clone(), e.state.clone()));
                if e.check_run_id.is_some() {
                    self.check_run_id = e.check_run_id;
                }
            }
            RunEvent::ReportRefused(_) => {}
            RunEvent::StatusReportFailed(e) => {
                if e.class == ErrorClass::Permanent {
                    self.status_abandoned
                        .push((e.context.clone(), e.state.clone()));
                }
            }
        }
    }

    fn report_received(&mut self, at: DateTime<Utc>) {
        if self.attempt_started_at.is_none() {
            self.attempt_started_at = Some(at);
        }
    }

    /// VMs that may exist and nobody has asked to delete yet.
    pub fn live_vms(&self) -> impl Iterator<Item = (&str, &VmRecord)> {
        self.vms
            .iter()
            .filter(|(_, vm)| vm.status.is_live())
            .map(|(name, vm)| (name.as_str(), vm))
    }

    /// VMs whose deletion is requested and not yet confirmed.
    pub fn vms_to_delete(&self) -> impl Iterator<Item = (&str, &VmRecord)> {
        self.vms
            .iter()
            .filter(|(_, vm)| vm.status == VmStatus::DeleteRequested)
            .map(|(name, vm)| (name.as_str(), vm))
    }
}
