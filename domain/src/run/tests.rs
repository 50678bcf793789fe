//! Given events, when a command, then events or a rejection.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::ids::{Platform, RunId};
use crate::policy::Policy;
use crate::verdict::{
    ExpectedOutput, OutputProduced, ProducedOutput, RegressionTest, SampleRef, TestResult, Verdict,
};
use crate::{Aggregate, Context};

struct Scenario {
    state: RunState,
    events: Vec<RunEvent>,
    now: DateTime<Utc>,
    policy: Policy,
}

fn test_case(id: &str) -> RegressionTest {
    RegressionTest {
        id: id.into(),
        sample: SampleRef {
            sha256: format!("sample-{id}"),
            name: format!("{id}.ts"),
            location: None,
        },
        command: "{exe} {sample} -o {out}".into(),
        input: Default::default(),
        expected_exit_code: 0,
        categories: vec!["general".into()],
        outputs: vec![ExpectedOutput {
            name: "out.srt".into(),
            approved_sha256: "approved".into(),
            variants: vec![],
            ignore: false,
        }],
        output: Default::default(),
        output_pattern: None,
    }
}

fn request_vm() -> RunCommand {
    RunCommand::RequestVm {
        runner_credential_sha256: "credential-hash".into(),
    }
}

fn queue_command() -> RunCommand {
    RunCommand::Queue(QueueRun {
        run_id: RunId::derived("scenario"),
        repository: "CCExtractor/ccextractor".into(),
        commit_sha: "a".repeat(40),
        platform: Platform::new("linux").expect("valid"),
        trigger: Trigger::Push {
            branch: "master".into(),
        },
        priority: 0,
        tests: vec![test_case("t1"), test_case("t2")],
        delivery_id: Some("delivery-1".into()),
        ancestry: Default::default(),
    })
}

impl Scenario {
    fn new() -> Self {
        Scenario {
            state: RunState::default(),
            events: vec![],
            now: Utc
                .with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
                .single()
                .expect("valid time"),
            policy: Policy::default(),
        }
    }

    fn queued() -> Self {
        let mut s = Scenario::new();
        s.ok(queue_command());
        s
    }

    /// Queued, artifact fetched, VM requested and created, runner testing.
    fn running() -> Self {
        let mut s = Scenario::queued();
        s.ok(RunCommand::RecordArtifactFetched {
            size_bytes: 10,
            sha256: "art".into(),
            location: "store/art".into(),
        });
        s.ok(request_vm());
        let vm = s.vm();
        s.ok(RunCommand::RecordVmCreated {
            attempt: 1,
            vm_name: vm,
        });
        s.ok(RunCommand::RecordProgress {
            attempt: 1,
            stage: RunnerStage::Testing,
            message: String::new(),
            done: 0,
            total: 2,
        });
        s
    }

    fn ctx(&self) -> Context {
        Context {
            now: self.now,
            policy: self.policy.clone(),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn decide(&self, command: RunCommand) -> Result<Vec<RunEvent>, Rejection> {
        decide(&self.state, &command, &self.ctx())
    }

    fn ok(&mut self, command: RunCommand) -> Vec<&'static str> {
        let events = self
            .decide(command.clone())
            .unwrap_or_else(|r| panic!("{command:?} rejected: {r}"));
        for e in &events {
            self.state = std::mem::take(&mut self.state).evolve(e);
        }
        let names = events.iter().map(RunEvent::type_name).collect();
        self.events.extend(events);
        names
    }

    fn rejects(&self, command: RunCommand) -> Rejection {
        match self.decide(command.clone()) {
            Err(r) => r,
            Ok(events) => panic!("{command:?} accepted: {events:?}"),
        }
    }

    fn run(&self) -> &Run {
        self.state.run.as_ref().expect("run exists")
    }

    fn vm(&self) -> String {
        match &self.run().lifecycle {
            Lifecycle::Active { phase, .. } => phase.vm_name().expect("has a VM").to_string(),
            other => panic!("not active: {other:?}"),
        }
    }

    fn result(&self, test: &str, exit_code: i32, hash: &str) -> RunCommand {
        RunCommand::RecordSampleResult {
            attempt: self.run().attempt,
            result: TestResult {
                test_id: test.into(),
                exit_code,
                runtime_ms: 5,
                timed_out: false,
                outputs: vec![ProducedOutput {
                    name: "out.srt".into(),
                    produced: OutputProduced::Sha256 {
                        sha256: hash.into(),
                    },
                }],
                input_error: None,
            },
        }
    }
}

#[test]
fn queueing_sets_the_artifact_deadline() {
    let s = Scenario::queued();
    let deadline = s.state.deadline().expect("queued runs have a deadline");
    assert_eq!(deadline.kind, DeadlineKind::ArtifactWait);
    assert_eq!(deadline.at, s.now + Duration::minutes(60));
    assert_eq!(s.state.version, 1);
    assert_eq!(s.rejects(queue_command()), Rejection::AlreadyQueued);
}

#[test]
fn commands_on_a_missing_run_are_rejected() {
    let s = Scenario::new();
    assert_eq!(s.rejects(RunCommand::FireDeadline), Rejection::RunNotFound);
}

#[test]
fn bad_queue_input_is_rejected_with_the_field() {
    let s = Scenario::new();
    let RunCommand::Queue(mut q) = queue_command() else {
        unreachable!()
    };
    q.commit_sha = "abc".into();
    let r = s.rejects(RunCommand::Queue(q.clone()));
    assert!(r.to_string().contains("commit"), "{r}");
    q.commit_sha = "b".repeat(40);
    q.repository = "no-owner".into();
    assert!(
        s.rejects(RunCommand::Queue(q))
            .to_string()
            .contains("owner/name")
    );
}

#[test]
fn the_happy_path_ends_completed_and_deletes_the_vm() {
    let mut s = Scenario::running();
    assert_eq!(s.state.stage(), Some(Stage::Testing));
    s.ok(s.result("t1", 0, "approved"));
    s.ok(s.result("t2", 0, "approved"));
    let vm = s.vm();
    assert_eq!(
        s.ok(RunCommand::Finish { attempt: 1 }),
        vec!["Completed", "VmDeleteRequested"]
    );
    assert!(matches!(
        s.run().lifecycle,
        Lifecycle::Final(Final::Completed {
            verdict: Verdict::Pass,
            ..
        })
    ));
    assert_eq!(s.state.deadline(), None);
    assert_eq!(
        s.ok(RunCommand::RecordVmDeleted {
            vm_name: vm.clone()
        }),
        vec!["VmDeleted"]
    );
    assert_eq!(s.run().vms[&vm].status, VmStatus::Deleted);
}

#[test]
fn a_wrong_output_fails_the_verdict_not_the_run() {
    let mut s = Scenario::running();
    s.ok(s.result("t1", 0, "approved"));
    s.ok(s.result("t2", 0, "different"));
    s.ok(RunCommand::Finish { attempt: 1 });
    let Lifecycle::Final(Final::Completed { verdict, counts }) = &s.run().lifecycle else {
        panic!("not completed")
    };
    assert_eq!(*verdict, Verdict::Fail);
    assert_eq!((counts.passed, counts.failed), (1, 1));
}

#[test]
fn after_the_final_event_only_cleanup_and_reporting_are_accepted() {
    let mut s = Scenario::running();
    s.ok(RunCommand::Cancel {
        reason: "operator".into(),
    });
    assert_eq!(
        s.rejects(RunCommand::Finish { attempt: 1 }),
        Rejection::RunFinal {
            outcome: "cancelled",
            command: "finish"
        }
    );
    assert!(matches!(
        s.rejects(RunCommand::Supersede {
            by: RunId::derived("other"),
            reason: "x".into()
        }),
        Rejection::RunFinal { .. }
    ));
    assert!(matches!(
        s.rejects(RunCommand::FireDeadline),
        Rejection::RunFinal { .. }
    ));
    assert_eq!(
        s.ok(RunCommand::RecordStatusReported {
            context: "CI - linux".into(),
            state: "error".into(),
            description: "cancelled".into(),
            check_run_id: None,
        }),
        vec!["StatusReported"]
    );
    assert!(matches!(
        s.rejects(RunCommand::RecordStatusReported {
            context: "CI - linux".into(),
            state: "error".into(),
            description: "again".into(),
            check_run_id: None,
        }),
        Rejection::AlreadyReported { .. }
    ));
}

#[test]
fn cancelling_while_provisioning_asks_to_delete_the_requested_vm() {
    let mut s = Scenario::queued();
    s.ok(RunCommand::RecordArtifactFetched {
        size_bytes: 1,
        sha256: "a".into(),
        location: "l".into(),
    });
    s.ok(request_vm());
    let vm = s.vm();
    assert_eq!(
        s.ok(RunCommand::Cancel {
            reason: "pull request closed".into()
        }),
        vec!["Cancelled", "VmDeleteRequested"]
    );
    // The cloud's late answer is recorded as nothing new: the delete is already pending.
    assert_eq!(
        s.decide(RunCommand::RecordVmCreated {
            attempt: 1,
            vm_name: vm
        }),
        Ok(vec![])
    );
}

#[test]
fn a_vm_that_comes_up_after_its_attempt_timed_out_is_deleted() {
    let mut s = Scenario::queued();
    s.ok(RunCommand::RecordArtifactFetched {
        size_bytes: 1,
        sha256: "a".into(),
        location: "l".into(),
    });
    s.ok(request_vm());
    let first_vm = s.vm();
    s.advance(Duration::minutes(6));
    assert_eq!(
        s.ok(RunCommand::FireDeadline),
        vec!["TimedOut", "VmDeleteRequested", "RetryScheduled"]
    );
    assert_eq!(s.run().attempt, 2);
    // A late report from attempt 1 is refused.
    assert_eq!(
        s.rejects(RunCommand::RecordProgress {
            attempt: 1,
            stage: RunnerStage::Preparing,
            message: String::new(),
            done: 0,
            total: 0
        }),
        Rejection::StaleAttempt {
            current: 2,
            reported: 1
        }
    );
    // The first VM appears late: already being deleted, nothing new.
    assert_eq!(
        s.decide(RunCommand::RecordVmCreated {
            attempt: 1,
            vm_name: first_vm
        }),
        Ok(vec![])
    );
}

#[test]
fn a_retry_waits_for_its_backoff_then_uses_a_new_vm_name() {
    let mut s = Scenario::running();
    let first_vm = s.vm();
    s.advance(Duration::minutes(6));
    assert_eq!(
        s.ok(RunCommand::FireDeadline),
        vec!["TimedOut", "VmDeleteRequested", "RetryScheduled"]
    );
    let Lifecycle::Active {
        phase: Phase::AwaitingVm { eligible_at },
        deadline,
    } = s.run().lifecycle.clone()
    else {
        panic!("not awaiting a VM")
    };
    assert!(eligible_at > s.now);
    assert_eq!(deadline.kind, DeadlineKind::QueueWait);
    assert_eq!(
        s.rejects(request_vm()),
        Rejection::NotYetEligible { at: eligible_at }
    );
    s.now = eligible_at;
    s.ok(request_vm());
    assert_ne!(s.vm(), first_vm);
    assert!(s.vm().ends_with("-a2"), "{}", s.vm());
}

#[test]
fn the_last_attempt_fails_with_a_reason_naming_the_stage() {
    let mut s = Scenario::running();
    for attempt in 1..=3 {
        // Heartbeat silence (5 min) first, then the boot limit (10 min).
        s.advance(Duration::minutes(11));
        let names = s.ok(RunCommand::FireDeadline);
        if attempt < 3 {
            assert_eq!(names.last(), Some(&"RetryScheduled"));
            s.now = match &s.run().lifecycle {
                Lifecycle::Active {
                    phase: Phase::AwaitingVm { eligible_at },
                    ..
                } => *eligible_at,
                other => panic!("{other:?}"),
            };
            s.ok(request_vm());
            let vm = s.vm();
            s.ok(RunCommand::RecordVmCreated {
                attempt: attempt + 1,
                vm_name: vm,
            });
        } else {
            assert_eq!(names.last(), Some(&"Failed"));
        }
    }
    let Lifecycle::Final(Final::Failed(reason)) = &s.run().lifecycle else {
        panic!("not failed")
    };
    assert_eq!(reason.stage, Stage::Booting);
    assert!(
        reason.message.contains("gave up after 3 attempt"),
        "{}",
        reason.message
    );
    assert!(
        reason.message.contains("runner's first report"),
        "{}",
        reason.message
    );
}

#[test]
fn heartbeats_never_extend_past_the_whole_run_limit() {
    let mut s = Scenario::running();
    let started = s.run().attempt_started_at.expect("started");
    for _ in 0..40 {
        s.advance(Duration::minutes(4));
        s.ok(RunCommand::RecordProgress {
            attempt: 1,
            stage: RunnerStage::Testing,
            message: String::new(),
            done: 0,
            total: 2,
        });
        let d = s.state.deadline().expect("deadline");
        assert!(d.at <= started + Duration::minutes(120));
    }
    assert_eq!(
        s.state.deadline().map(|d| d.kind),
        Some(DeadlineKind::WholeRun)
    );
    s.now = started + Duration::minutes(120);
    let names = s.ok(RunCommand::FireDeadline);
    assert_eq!(names, vec!["TimedOut", "VmDeleteRequested", "Failed"]);
}

#[test]
fn a_deadline_that_is_not_due_does_not_fire() {
    let s = Scenario::queued();
    assert!(matches!(
        s.rejects(RunCommand::FireDeadline),
        Rejection::DeadlineNotDue { .. }
    ));
}

#[test]
fn a_permanently_missing_artifact_fails_at_once() {
    let mut s = Scenario::queued();
    assert_eq!(
        s.ok(RunCommand::RecordArtifactUnavailable {
            class: ErrorClass::Retryable,
            reason: "build still running".into()
        }),
        vec!["ArtifactUnavailable"]
    );
    assert_eq!(
        s.state.deadline().map(|d| d.kind),
        Some(DeadlineKind::ArtifactWait)
    );
    assert_eq!(
        s.ok(RunCommand::RecordArtifactUnavailable {
            class: ErrorClass::Permanent,
            reason: "the build failed".into()
        }),
        vec!["ArtifactUnavailable", "Failed"]
    );
}

#[test]
fn quota_failures_retry_later_than_capacity_failures() {
    let delay = |class| {
        let mut s = Scenario::queued();
        s.ok(RunCommand::RecordArtifactFetched {
            size_bytes: 1,
            sha256: "a".into(),
            location: "l".into(),
        });
        s.ok(request_vm());
        let vm = s.vm();
        s.ok(RunCommand::RecordVmCreateFailed {
            attempt: 1,
            vm_name: vm,
            class,
            message: "no".into(),
        });
        match &s.run().lifecycle {
            Lifecycle::Active {
                phase: Phase::AwaitingVm { eligible_at },
                ..
            } => *eligible_at - s.now,
            other => panic!("{other:?}"),
        }
    };
    assert!(delay(ErrorClass::Quota) > delay(ErrorClass::Retryable));
}

#[test]
fn a_vanished_vm_is_recorded_gone_and_retried() {
    let mut s = Scenario::running();
    let vm = s.vm();
    assert_eq!(
        s.ok(RunCommand::ReportVmVanished {
            attempt: 1,
            vm_name: vm.clone()
        }),
        vec!["VmDeleted", "RetryScheduled"]
    );
    assert_eq!(s.run().vms[&vm].status, VmStatus::Deleted);
}

#[test]
fn a_runner_can_report_before_the_vm_creation_is_recorded() {
    let mut s = Scenario::queued();
    s.ok(RunCommand::RecordArtifactFetched {
        size_bytes: 1,
        sha256: "a".into(),
        location: "l".into(),
    });
    s.ok(request_vm());
    let vm = s.vm();
    s.ok(RunCommand::RecordProgress {
        attempt: 1,
        stage: RunnerStage::Preparing,
        message: "downloading".into(),
        done: 0,
        total: 2,
    });
    let before = s.state.deadline();
    assert_eq!(
        s.ok(RunCommand::RecordVmCreated {
            attempt: 1,
            vm_name: vm.clone()
        }),
        vec!["VmCreated"]
    );
    assert_eq!(s.state.stage(), Some(Stage::Preparing));
    assert_eq!(s.state.deadline(), before);
    assert_eq!(s.run().vms[&vm].status, VmStatus::Created);
}

#[test]
fn results_are_checked_against_the_scope_and_duplicates() {
    let mut s = Scenario::running();
    assert!(matches!(
        s.rejects(s.result("nope", 0, "x")),
        Rejection::Invalid(_)
    ));
    s.ok(s.result("t1", 0, "approved"));
    assert_eq!(s.decide(s.result("t1", 0, "approved")), Ok(vec![]));
    assert!(matches!(
        s.rejects(s.result("t1", 1, "approved")),
        Rejection::ResultAlreadyRecorded { .. }
    ));
}

#[test]
fn supersede_names_the_new_run_and_cannot_name_itself() {
    let mut s = Scenario::queued();
    let me = s.run().info.id;
    assert!(matches!(
        s.rejects(RunCommand::Supersede {
            by: me,
            reason: "x".into()
        }),
        Rejection::Invalid(_)
    ));
    let newer = RunId::derived("newer");
    s.ok(RunCommand::Supersede {
        by: newer,
        reason: "new commit".into(),
    });
    assert!(matches!(
        &s.run().lifecycle,
        Lifecycle::Final(Final::Superseded { by, .. }) if *by == newer
    ));
}

#[test]
fn replaying_the_recorded_events_gives_the_same_state() {
    let mut s = Scenario::running();
    s.ok(s.result("t1", 0, "approved"));
    s.ok(RunCommand::Finish { attempt: 1 });
    assert_eq!(RunState::replay(&s.events), s.state);
}

#[test]
fn a_vm_that_will_not_delete_is_left_to_a_person_after_the_limit() {
    let mut s = Scenario::running();
    s.policy.retry.vm_delete_attempts = 3;
    let vm = s.vm();
    s.ok(RunCommand::Cancel {
        reason: "not needed".into(),
    });
    let fail = || RunCommand::RecordVmDeleteFailed {
        vm_name: vm.clone(),
        class: ErrorClass::Retryable,
        message: "503 from the cloud".into(),
    };
    assert_eq!(s.ok(fail()), vec!["VmDeleteFailed"]);
    assert_eq!(s.ok(fail()), vec!["VmDeleteFailed"]);
    assert_eq!(s.ok(fail()), vec!["VmDeleteFailed", "VmAbandoned"]);
    assert_eq!(s.run().vms[&vm].status, VmStatus::Abandoned);
    let Some(RunEvent::VmAbandoned(abandoned)) = s.events.last() else {
        panic!("{:?}", s.events.last())
    };
    assert_eq!(abandoned.failures, 3);
    assert!(
        abandoned.reason.contains("503 from the cloud"),
        "{}",
        abandoned.reason
    );
    assert!(
        abandoned.reason.starts_with("3 deletions failed"),
        "{}",
        abandoned.reason
    );
    // Not retried any more: the VM is no longer one to delete.
    assert_eq!(s.run().vms_to_delete().count(), 0);
    // A person deleted it; reconciliation records it gone.
    assert_eq!(
        s.ok(RunCommand::RecordVmDeleted {
            vm_name: vm.clone()
        }),
        vec!["VmDeleted"]
    );
    assert_eq!(s.run().vms[&vm].status, VmStatus::Deleted);
}

#[test]
fn a_permanent_delete_failure_is_left_to_a_person_at_once() {
    let mut s = Scenario::running();
    let vm = s.vm();
    s.ok(RunCommand::Cancel {
        reason: "not needed".into(),
    });
    assert_eq!(
        s.ok(RunCommand::RecordVmDeleteFailed {
            vm_name: vm.clone(),
            class: ErrorClass::Permanent,
            message: "403: the service account may not delete instances".into(),
        }),
        vec!["VmDeleteFailed", "VmAbandoned"]
    );
    assert_eq!(s.run().vms[&vm].status, VmStatus::Abandoned);
}
