//! `decide`: the rules of a run, as one match on (lifecycle, command).

use chrono::{DateTime, Utc};

use super::commands::{QueueRun, Rejection, RunCommand};
use super::events::*;
use super::state::{Lifecycle, Phase, Run, RunState, VmStatus};
use super::types::{Deadline, DeadlineKind, ErrorClass, FailureReason, Stage};
use crate::context::Context;
use crate::verdict;

type Decision = Result<Vec<RunEvent>, Rejection>;

/// Decide what a command means for a run: the events to record, or why not.
///
/// An empty list means the command asks for nothing that has not happened
/// already (a duplicate report of a VM's creation, say).
pub fn decide(state: &RunState, command: &RunCommand, ctx: &Context) -> Decision {
    let Some(run) = state.run.as_ref() else {
        return match command {
            RunCommand::Queue(q) => queue(q, ctx),
            _ => Err(Rejection::RunNotFound),
        };
    };
    let decider = Decider { run, ctx };
    match &run.lifecycle {
        Lifecycle::Final(end) => decider.after_final(end.name(), command),
        Lifecycle::Active { phase, deadline } => decider.active(phase, *deadline, command),
    }
}

fn queue(q: &QueueRun, ctx: &Context) -> Decision {
    if let Some(problem) = crate::ids::repository_problem(&q.repository) {
        return Err(Rejection::Invalid(format!("repository {problem}")));
    }
    let sha_ok = matches!(q.commit_sha.len(), 40 | 64)
        && q.commit_sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !sha_ok {
        return Err(Rejection::Invalid(format!(
            "commit {:?} is not a full lower-case hexadecimal SHA",
            q.commit_sha
        )));
    }
    let mut ids = std::collections::BTreeSet::new();
    if let Some(dup) = q.tests.iter().find(|t| !ids.insert(t.id.as_str())) {
        return Err(Rejection::Invalid(format!(
            "regression test {:?} is in scope twice",
            dup.id
        )));
    }
    let deadline = deadline(ctx, DeadlineKind::ArtifactWait, ctx.now, &q.platform);
    Ok(vec![RunEvent::Queued(Queued {
        at: ctx.now,
        run_id: q.run_id,
        repository: q.repository.clone(),
        commit_sha: q.commit_sha.clone(),
        platform: q.platform.clone(),
        trigger: q.trigger.clone(),
        priority: q.priority,
        tests: q.tests.clone(),
        delivery_id: q.delivery_id.clone(),
        ancestry: q.ancestry.clone(),
        deadline,
    })])
}

fn deadline(
    ctx: &Context,
    kind: DeadlineKind,
    from: DateTime<Utc>,
    platform: &crate::Platform,
) -> Deadline {
    Deadline {
        at: from + ctx.policy.deadlines.limit(kind, platform),
        kind,
    }
}

struct Decider<'a> {
    run: &'a Run,
    ctx: &'a Context,
}

impl Decider<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.ctx.now
    }

    fn deadline(&self, kind: DeadlineKind, from: DateTime<Utc>) -> Deadline {
        deadline(self.ctx, kind, from, &self.run.info.platform)
    }

    /// After the final event only cleanup and reporting are accepted.
    fn after_final(&self, outcome: &'static str, command: &RunCommand) -> Decision {
        match command {
            RunCommand::RecordVmCreated { attempt, vm_name } => {
                self.unwanted_vm(*attempt, vm_name, &format!("the run is already {outcome}"))
            }
            RunCommand::RequestVmDelete { vm_name, reason } => self.request_delete(vm_name, reason),
            RunCommand::RecordVmDeleted { vm_name } => self.vm_deleted(vm_name),
            RunCommand::RecordVmDeleteFailed {
                vm_name,
                class,
                message,
            } => self.vm_delete_failed(vm_name, *class, message),
            RunCommand::RecordStatusReported {
                context,
                state,
                description,
                check_run_id,
            } => self.status_reported(context, state, description, *check_run_id),
            RunCommand::RecordRefusedReport { attempt, reason } => {
                Ok(self.refused(*attempt, reason))
            }
            RunCommand::RecordStatusReportFailed {
                context,
                state,
                class,
                message,
            } => Ok(self.status_report_failed(context, state, *class, message)),
            RunCommand::Queue(_) => Err(Rejection::AlreadyQueued),
            other => Err(Rejection::RunFinal {
                outcome,
                command: other.name(),
            }),
        }
    }

    fn active(&self, phase: &Phase, deadline: Deadline, command: &RunCommand) -> Decision {
        let wrong_stage = || Rejection::WrongStage {
            stage: phase.stage(),
            command: command.name(),
        };
        match command {
            RunCommand::Queue(_) => Err(Rejection::AlreadyQueued),
            RunCommand::Supersede { by, reason } => {
                if *by == self.run.info.id {
                    return Err(Rejection::Invalid("a run cannot supersede itself".into()));
                }
                let end = RunEvent::Superseded(Superseded {
                    at: self.now(),
                    by: *by,
                    reason: reason.clone(),
                });
                Ok(self.ending(end, &format!("run superseded: {reason}")))
            }
            RunCommand::Cancel { reason } => {
                let end = RunEvent::Cancelled(Cancelled {
                    at: self.now(),
                    reason: reason.clone(),
                });
                Ok(self.ending(end, &format!("run cancelled: {reason}")))
            }
            RunCommand::RecordArtifactFetched {
                size_bytes,
                sha256,
                location,
            } => {
                if *phase != Phase::AwaitingArtifact {
                    return Err(wrong_stage());
                }
                Ok(vec![RunEvent::ArtifactFetched(ArtifactFetched {
                    at: self.now(),
                    size_bytes: *size_bytes,
                    sha256: sha256.clone(),
                    location: location.clone(),
                    deadline: self.deadline(DeadlineKind::QueueWait, self.now()),
                })])
            }
            RunCommand::RecordArtifactUnavailable { class, reason } => {
                if *phase != Phase::AwaitingArtifact {
                    return Err(wrong_stage());
                }
                let mut events = vec![RunEvent::ArtifactUnavailable(ArtifactUnavailable {
                    at: self.now(),
                    class: *class,
                    reason: reason.clone(),
                })];
                if *class == ErrorClass::Permanent {
                    events.push(self.failed(
                        Stage::AwaitingArtifact,
                        ErrorClass::Permanent,
                        format!("the build artifact will not become available: {reason}"),
                    ));
                }
                Ok(events)
            }
            RunCommand::RequestVm {
                runner_credential_sha256,
            } => {
                let Phase::AwaitingVm { eligible_at } = phase else {
                    return Err(wrong_stage());
                };
                if *eligible_at > self.now() {
                    return Err(Rejection::NotYetEligible { at: *eligible_at });
                }
                let attempt = self.run.attempt;
                let id = self.run.info.id;
                Ok(vec![RunEvent::VmRequested(VmRequested {
                    at: self.now(),
                    attempt,
                    vm_name: format!("sp-{}-{}-a{attempt}", self.run.info.platform, id.short()),
                    idempotency_key: format!("{id}-a{attempt}"),
                    deadline: self.deadline(DeadlineKind::VmCreate, self.now()),
                    runner_credential_sha256: runner_credential_sha256.clone(),
                })])
            }
            RunCommand::RecordVmCreated { attempt, vm_name } => {
                self.vm_created(phase, deadline, *attempt, vm_name)
            }
            RunCommand::RecordVmCreateFailed {
                attempt,
                vm_name,
                class,
                message,
            } => {
                self.current_attempt(*attempt)?;
                if phase.vm_name() != Some(vm_name.as_str())
                    || !matches!(phase, Phase::ProvisioningVm { .. })
                {
                    return Err(wrong_stage());
                }
                let mut events = vec![
                    RunEvent::VmCreateFailed(VmCreateFailed {
                        at: self.now(),
                        attempt: *attempt,
                        vm_name: vm_name.clone(),
                        class: *class,
                        message: message.clone(),
                    }),
                    // A failed create can still leave an instance behind; a 404 on
                    // delete counts as deleted, so asking costs little.
                    self.delete_request(vm_name, *attempt, "VM creation failed"),
                ];
                events.push(self.retry_or_fail(
                    Stage::ProvisioningVm,
                    *class,
                    format!("creating VM {vm_name} failed: {message}"),
                ));
                Ok(events)
            }
            RunCommand::RecordProgress {
                attempt,
                stage,
                message,
                done,
                total,
            } => {
                self.current_attempt(*attempt)?;
                if phase.vm_name().is_none() {
                    return Err(wrong_stage());
                }
                if done > total {
                    return Err(Rejection::Invalid(format!(
                        "progress {done}/{total}: done exceeds total"
                    )));
                }
                Ok(vec![RunEvent::Progress(Progress {
                    at: self.now(),
                    attempt: *attempt,
                    stage: *stage,
                    message: message.clone(),
                    done: *done,
                    total: *total,
                    deadline: self.running_deadline(),
                })])
            }
            RunCommand::RecordSampleResult { attempt, result } => {
                self.current_attempt(*attempt)?;
                if phase.vm_name().is_none() {
                    return Err(wrong_stage());
                }
                if self.run.info.test(&result.test_id).is_none() {
                    return Err(Rejection::Invalid(format!(
                        "regression test {:?} is not in this run's scope",
                        result.test_id
                    )));
                }
                match self.run.results.get(&result.test_id) {
                    Some(existing) if existing == result => return Ok(vec![]),
                    Some(_) => {
                        return Err(Rejection::ResultAlreadyRecorded {
                            test_id: result.test_id.clone(),
                        });
                    }
                    None => {}
                }
                Ok(vec![RunEvent::SampleResult(SampleResult {
                    at: self.now(),
                    attempt: *attempt,
                    result: result.clone(),
                    deadline: self.running_deadline(),
                })])
            }
            RunCommand::Finish { attempt } => {
                self.current_attempt(*attempt)?;
                if phase.vm_name().is_none() {
                    return Err(wrong_stage());
                }
                let (verdict, counts) = verdict::verdict(&self.run.info.tests, &self.run.results);
                let end = RunEvent::Completed(Completed {
                    at: self.now(),
                    attempt: *attempt,
                    verdict,
                    counts,
                });
                Ok(self.ending(end, "the runner finished"))
            }
            RunCommand::ReportRunnerFailure {
                attempt,
                class,
                message,
            } => {
                self.current_attempt(*attempt)?;
                if phase.vm_name().is_none() {
                    return Err(wrong_stage());
                }
                let mut events = self.delete_live_vms("the runner gave up");
                events.push(self.retry_or_fail(
                    phase.stage(),
                    *class,
                    format!("the runner failed: {message}"),
                ));
                Ok(events)
            }
            RunCommand::FireDeadline => {
                if deadline.at > self.now() {
                    return Err(Rejection::DeadlineNotDue { at: deadline.at });
                }
                self.timed_out(phase, deadline)
            }
            RunCommand::ReportVmVanished { attempt, vm_name } => {
                self.current_attempt(*attempt)?;
                if phase.vm_name() != Some(vm_name.as_str()) {
                    return Err(Rejection::UnknownVm(vm_name.clone()));
                }
                if matches!(phase, Phase::ProvisioningVm { .. }) {
                    // Not there yet is what provisioning looks like.
                    return Err(wrong_stage());
                }
                let mut events = vec![RunEvent::VmDeleted(VmDeleted {
                    at: self.now(),
                    attempt: *attempt,
                    vm_name: vm_name.clone(),
                })];
                events.push(self.retry_or_fail(
                    phase.stage(),
                    ErrorClass::Retryable,
                    format!("VM {vm_name} disappeared (preempted or deleted outside the platform)"),
                ));
                Ok(events)
            }
            RunCommand::RequestVmDelete { vm_name, reason } => {
                if phase.vm_name() == Some(vm_name.as_str()) {
                    // The current attempt's VM goes only with its attempt (timeout,
                    // failure, final); deleting it here would strand the run.
                    return Err(wrong_stage());
                }
                self.request_delete(vm_name, reason)
            }
            RunCommand::RecordVmDeleted { vm_name } => {
                if phase.vm_name() == Some(vm_name.as_str()) {
                    return Err(wrong_stage());
                }
                self.vm_deleted(vm_name)
            }
            RunCommand::RecordVmDeleteFailed {
                vm_name,
                class,
                message,
            } => self.vm_delete_failed(vm_name, *class, message),
            RunCommand::RecordStatusReported {
                context,
                state,
                description,
                check_run_id,
            } => self.status_reported(context, state, description, *check_run_id),
            RunCommand::RecordRefusedReport { attempt, reason } => {
                Ok(self.refused(*attempt, reason))
            }
            RunCommand::RecordStatusReportFailed {
                context,
                state,
                class,
                message,
            } => Ok(self.status_report_failed(context, state, *class, message)),
        }
    }

    fn status_report_failed(
        &self,
        context: &str,
        state: &str,
        class: ErrorClass,
        message: &str,
    ) -> Vec<RunEvent> {
        vec![RunEvent::StatusReportFailed(StatusReportFailed {
            at: self.now(),
            context: context.to_string(),
            state: state.to_string(),
            class,
            message: message.to_string(),
        })]
    }

    fn refused(&self, attempt: u32, reason: &str) -> Vec<RunEvent> {
        vec![RunEvent::ReportRefused(ReportRefused {
            at: self.now(),
            attempt,
            reason: reason.to_string(),
        })]
    }

    fn current_attempt(&self, attempt: u32) -> Result<(), Rejection> {
        if attempt == self.run.attempt {
            Ok(())
        } else {
            Err(Rejection::StaleAttempt {
                current: self.run.attempt,
                reported: attempt,
            })
        }
    }

    /// A report moves the heartbeat on, but never past the attempt's whole-run limit.
    fn running_deadline(&self) -> Deadline {
        let heartbeat = self.deadline(DeadlineKind::Heartbeat, self.now());
        let started = self.run.attempt_started_at.unwrap_or(self.now());
        let whole = self.deadline(DeadlineKind::WholeRun, started);
        if whole.at < heartbeat.at {
            whole
        } else {
            heartbeat
        }
    }

    fn vm_created(
        &self,
        phase: &Phase,
        deadline: Deadline,
        attempt: u32,
        vm_name: &str,
    ) -> Decision {
        let Some(vm) = self.run.vms.get(vm_name) else {
            return Err(Rejection::UnknownVm(vm_name.to_string()));
        };
        if vm.attempt != attempt {
            return Err(Rejection::Invalid(format!(
                "VM {vm_name} belongs to attempt {}, not {attempt}",
                vm.attempt
            )));
        }
        if phase.vm_name() != Some(vm_name) {
            return self.unwanted_vm(attempt, vm_name, "its attempt was abandoned");
        }
        if vm.status != VmStatus::Requested {
            return Ok(vec![]);
        }
        // The runner may report before the cloud's answer is recorded; then the
        // run is already past booting and keeps its current deadline.
        let deadline = match phase {
            Phase::ProvisioningVm { .. } => self.deadline(DeadlineKind::Boot, self.now()),
            _ => deadline,
        };
        Ok(vec![RunEvent::VmCreated(VmCreated {
            at: self.now(),
            attempt,
            vm_name: vm_name.to_string(),
            deadline,
        })])
    }

    /// A VM came up that nobody wants any more: ask for it to go.
    fn unwanted_vm(&self, attempt: u32, vm_name: &str, why: &str) -> Decision {
        match self.run.vms.get(vm_name) {
            None => Err(Rejection::UnknownVm(vm_name.to_string())),
            Some(vm) if vm.status.is_live() => Ok(vec![self.delete_request(
                vm_name,
                attempt,
                &format!("VM came up after {why}"),
            )]),
            Some(_) => Ok(vec![]),
        }
    }

    fn timed_out(&self, phase: &Phase, deadline: Deadline) -> Decision {
        let stage = phase.stage();
        let mut events = vec![RunEvent::TimedOut(TimedOut {
            at: self.now(),
            attempt: self.run.attempt,
            stage,
            deadline,
        })];
        events.extend(self.delete_live_vms(&format!("timed out {}", deadline.kind.describe())));
        let limit = self
            .ctx
            .policy
            .deadlines
            .limit(deadline.kind, &self.run.info.platform);
        let limit = human(limit);
        let (class, message) = match deadline.kind {
            DeadlineKind::ArtifactWait => (
                ErrorClass::Permanent,
                format!(
                    "no build artifact for commit {} within {limit}: check that the build workflow ran and uploaded it",
                    self.run.info.commit_sha
                ),
            ),
            DeadlineKind::QueueWait => (
                ErrorClass::Permanent,
                format!(
                    "waited {limit} for a VM slot on {}: is the platform paused or its capacity too small?",
                    self.run.info.platform
                ),
            ),
            DeadlineKind::WholeRun => (
                ErrorClass::Permanent,
                format!("the tests ran longer than {limit}: a test may hang; see the runner log"),
            ),
            DeadlineKind::VmCreate | DeadlineKind::Boot | DeadlineKind::Heartbeat => (
                ErrorClass::Retryable,
                format!("timed out after {limit} {}", deadline.kind.describe()),
            ),
        };
        events.push(self.retry_or_fail(stage, class, message));
        Ok(events)
    }

    /// After a failed attempt: another one after a backoff, or the end with a
    /// reason a person can act on.
    fn retry_or_fail(&self, stage: Stage, class: ErrorClass, message: String) -> RunEvent {
        let retry = &self.ctx.policy.retry;
        let attempt = self.run.attempt;
        if class != ErrorClass::Permanent && retry.allows_another(attempt) {
            let not_before = self.now() + retry.backoff(self.run.info.id, attempt, class);
            return RunEvent::RetryScheduled(RetryScheduled {
                at: self.now(),
                next_attempt: attempt + 1,
                not_before,
                reason: message,
                deadline: self.deadline(DeadlineKind::QueueWait, not_before),
            });
        }
        let message = if class == ErrorClass::Permanent {
            message
        } else {
            format!("gave up after {attempt} attempt(s); the last one: {message}")
        };
        self.failed(stage, class, message)
    }

    fn failed(&self, stage: Stage, class: ErrorClass, message: String) -> RunEvent {
        RunEvent::Failed(Failed {
            at: self.now(),
            reason: FailureReason {
                stage,
                class,
                message,
            },
        })
    }

    /// A final event, followed by the deletion of every VM that may still exist.
    fn ending(&self, end: RunEvent, why: &str) -> Vec<RunEvent> {
        let mut events = vec![end];
        events.extend(self.delete_live_vms(why));
        events
    }

    fn delete_live_vms(&self, why: &str) -> Vec<RunEvent> {
        self.run
            .live_vms()
            .map(|(name, vm)| self.delete_request(name, vm.attempt, why))
            .collect()
    }

    fn delete_request(&self, vm_name: &str, attempt: u32, reason: &str) -> RunEvent {
        RunEvent::VmDeleteRequested(VmDeleteRequested {
            at: self.now(),
            attempt,
            vm_name: vm_name.to_string(),
            reason: reason.to_string(),
        })
    }

    fn request_delete(&self, vm_name: &str, reason: &str) -> Decision {
        match self.run.vms.get(vm_name) {
            None => Err(Rejection::UnknownVm(vm_name.to_string())),
            Some(vm) if vm.status.is_live() => {
                Ok(vec![self.delete_request(vm_name, vm.attempt, reason)])
            }
            Some(_) => Ok(vec![]),
        }
    }

    fn vm_deleted(&self, vm_name: &str) -> Decision {
        match self.run.vms.get(vm_name) {
            None => Err(Rejection::UnknownVm(vm_name.to_string())),
            Some(vm) if vm.status == VmStatus::Deleted => Ok(vec![]),
            Some(vm) => Ok(vec![RunEvent::VmDeleted(VmDeleted {
                at: self.now(),
                attempt: vm.attempt,
                vm_name: vm_name.to_string(),
            })]),
        }
    }

    fn vm_delete_failed(&self, vm_name: &str, class: ErrorClass, message: &str) -> Decision {
        match self.run.vms.get(vm_name) {
            None => Err(Rejection::UnknownVm(vm_name.to_string())),
            Some(vm) if vm.status != VmStatus::DeleteRequested => Err(Rejection::Invalid(format!(
                "VM {vm_name} is not being deleted"
            ))),
            Some(vm) => {
                let mut events = vec![RunEvent::VmDeleteFailed(VmDeleteFailed {
                    at: self.now(),
                    attempt: vm.attempt,
                    vm_name: vm_name.to_string(),
                    class,
                    message: message.to_string(),
                })];
                let failures = vm.delete_failures + 1;
                let limit = self.ctx.policy.retry.vm_delete_attempts.max(1);
                if class == ErrorClass::Permanent || failures >= limit {
                    let why = if class == ErrorClass::Permanent {
                        "the cloud refuses for good".to_string()
                    } else {
                        format!("{failures} deletions failed")
                    };
                    events.push(RunEvent::VmAbandoned(VmAbandoned {
                        at: self.now(),
                        attempt: vm.attempt,
                        vm_name: vm_name.to_string(),
                        failures,
                        reason: format!("{why}; last error: {message}"),
                    }));
                }
                Ok(events)
            }
        }
    }

    fn status_reported(
        &self,
        context: &str,
        state: &str,
        description: &str,
        check_run_id: Option<u64>,
    ) -> Decision {
        let already = self
            .run
            .reported
            .iter()
            .any(|(c, s)| c == context && s == state);
        if already {
            return Err(Rejection::AlreadyReported {
                context: context.to_string(),
                state: state.to_string(),
            });
        }
        Ok(vec![RunEvent::StatusReported(StatusReported {
            at: self.now(),
            context: context.to_string(),
            state: state.to_string(),
            description: description.to_string(),
            check_run_id,
        })])
    }
}

/// A limit as people say it: seconds below two minutes, then minutes.
fn human(d: chrono::Duration) -> String {
    if d < chrono::Duration::minutes(2) {
        format!("{} s", d.num_seconds())
    } else {
        format!("{} min", d.num_minutes())
    }
}
