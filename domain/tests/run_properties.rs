//! Property tests over random command sequences: whatever happens to a run,
//! its invariants hold.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use sp_domain::Aggregate;
use sp_domain::codec::EventSchema;
use sp_domain::verdict::{OutputProduced, ProducedOutput, TestResult};
use sp_domain::{
    Context, ErrorClass, ExpectedOutput, Lifecycle, Platform, Policy, QueueRun, RegressionTest,
    RunCommand, RunEvent, RunId, RunState, RunnerStage, SampleRef, Trigger,
};

/// An abstract step, made concrete against the state it meets (which VM, which attempt).
#[derive(Debug, Clone)]
enum Step {
    Wait(u32),
    Queue,
    Supersede,
    Cancel,
    ArtifactFetched,
    ArtifactUnavailable(ErrorClass),
    RequestVm,
    VmCreated {
        stale: bool,
    },
    VmCreateFailed(ErrorClass),
    Progress {
        stale: bool,
        done: u32,
        total: u32,
    },
    Result {
        test: usize,
        exit_code: i32,
        stale: bool,
    },
    Finish {
        stale: bool,
    },
    RunnerFailure(ErrorClass),
    FireDeadline,
    VmVanished,
    RequestVmDelete(usize),
    VmDeleted(usize),
    VmDeleteFailed(usize),
    Status(usize, usize),
    Refused,
}

fn class() -> impl Strategy<Value = ErrorClass> {
    prop_oneof![
        Just(ErrorClass::Retryable),
        Just(ErrorClass::Quota),
        Just(ErrorClass::Permanent)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u32..400).prop_map(Step::Wait),
        1 => Just(Step::Queue),
        1 => Just(Step::Supersede),
        1 => Just(Step::Cancel),
        3 => Just(Step::ArtifactFetched),
        1 => class().prop_map(Step::ArtifactUnavailable),
        4 => Just(Step::RequestVm),
        3 => any::<bool>().prop_map(|stale| Step::VmCreated { stale }),
        1 => class().prop_map(Step::VmCreateFailed),
        3 => (any::<bool>(), 0u32..4, 0u32..4).prop_map(|(stale, done, total)| Step::Progress { stale, done, total }),
        3 => (0usize..3, 0i32..2, any::<bool>()).prop_map(|(test, exit_code, stale)| Step::Result { test, exit_code, stale }),
        2 => any::<bool>().prop_map(|stale| Step::Finish { stale }),
        1 => class().prop_map(Step::RunnerFailure),
        4 => Just(Step::FireDeadline),
        1 => Just(Step::VmVanished),
        1 => (0usize..4).prop_map(Step::RequestVmDelete),
        2 => (0usize..4).prop_map(Step::VmDeleted),
        1 => (0usize..4).prop_map(Step::VmDeleteFailed),
        1 => (0usize..2, 0usize..3).prop_map(|(c, s)| Step::Status(c, s)),
        1 => Just(Step::Refused),
    ]
}

fn tests_in_scope() -> Vec<RegressionTest> {
    (0..2)
        .map(|i| RegressionTest {
            id: format!("t{i}"),
            sample: SampleRef {
                sha256: format!("s{i}"),
                name: format!("s{i}.ts"),
                location: None,
            },
            command: "{exe} {sample}".into(),
            input: Default::default(),
            expected_exit_code: 0,
            categories: vec![],
            outputs: vec![ExpectedOutput {
                name: "out".into(),
                approved_sha256: "ok".into(),
                variants: vec!["variant".into()],
                ignore: false,
            }],
            output: Default::default(),
            output_pattern: None,
        })
        .collect()
}

fn concrete(step: &Step, state: &RunState, run_id: RunId) -> Option<RunCommand> {
    let run = state.run.as_ref();
    let attempt = run.map_or(1, |r| r.attempt);
    // A stale report names another attempt: the previous one, or a next one on attempt 1.
    let attempt_of = |stale: bool| match (stale, attempt) {
        (false, a) => a,
        (true, 1) => 2,
        (true, a) => a - 1,
    };
    let current_vm = run.and_then(|r| match &r.lifecycle {
        Lifecycle::Active { phase, .. } => phase.vm_name().map(str::to_string),
        Lifecycle::Final(_) => None,
    });
    let any_vm = |i: usize| run.and_then(|r| r.vms.keys().nth(i % r.vms.len().max(1)).cloned());
    Some(match step {
        Step::Wait(_) => return None,
        Step::Queue => RunCommand::Queue(QueueRun {
            run_id,
            repository: "CCExtractor/ccextractor".into(),
            commit_sha: "c".repeat(40),
            platform: Platform::new("linux").ok()?,
            trigger: Trigger::PullRequest {
                number: 7,
                head_ref: "feature".into(),
            },
            priority: 0,
            tests: tests_in_scope(),
            delivery_id: None,
            ancestry: Default::default(),
        }),
        Step::Supersede => RunCommand::Supersede {
            by: RunId::derived("newer"),
            reason: "newer commit".into(),
        },
        Step::Cancel => RunCommand::Cancel {
            reason: "operator".into(),
        },
        Step::ArtifactFetched => RunCommand::RecordArtifactFetched {
            size_bytes: 100,
            sha256: "a".into(),
            location: "store/a".into(),
        },
        Step::ArtifactUnavailable(class) => RunCommand::RecordArtifactUnavailable {
            class: *class,
            reason: "not yet".into(),
        },
        Step::RequestVm => RunCommand::RequestVm {
            runner_credential_sha256: format!("hash-{attempt}"),
        },
        Step::VmCreated { stale } => {
            let vm = if *stale { any_vm(0)? } else { current_vm? };
            let vm_attempt = run?.vms.get(&vm)?.attempt;
            RunCommand::RecordVmCreated {
                attempt: vm_attempt,
                vm_name: vm,
            }
        }
        Step::VmCreateFailed(class) => RunCommand::RecordVmCreateFailed {
            attempt,
            vm_name: current_vm?,
            class: *class,
            message: "ZONE_RESOURCE_POOL_EXHAUSTED".into(),
        },
        Step::Progress { stale, done, total } => RunCommand::RecordProgress {
            attempt: attempt_of(*stale),
            stage: RunnerStage::Testing,
            message: String::new(),
            done: *done,
            total: *total,
        },
        Step::Result {
            test,
            exit_code,
            stale,
        } => RunCommand::RecordSampleResult {
            attempt: attempt_of(*stale),
            result: TestResult {
                test_id: format!("t{test}"),
                exit_code: *exit_code,
                runtime_ms: 3,
                timed_out: false,
                outputs: vec![ProducedOutput {
                    name: "out".into(),
                    produced: OutputProduced::Sha256 {
                        sha256: "variant".into(),
                    },
                }],
                input_error: None,
            },
        },
        Step::Finish { stale } => RunCommand::Finish {
            attempt: attempt_of(*stale),
        },
        Step::RunnerFailure(class) => RunCommand::ReportRunnerFailure {
            attempt,
            class: *class,
            message: "disk full".into(),
        },
        Step::FireDeadline => RunCommand::FireDeadline,
        Step::VmVanished => RunCommand::ReportVmVanished {
            attempt,
            vm_name: current_vm?,
        },
        Step::RequestVmDelete(i) => RunCommand::RequestVmDelete {
            vm_name: any_vm(*i)?,
            reason: "reconciliation".into(),
        },
        Step::VmDeleted(i) => RunCommand::RecordVmDeleted {
            vm_name: any_vm(*i)?,
        },
        Step::VmDeleteFailed(i) => RunCommand::RecordVmDeleteFailed {
            vm_name: any_vm(*i)?,
            class: ErrorClass::Retryable,
            message: "503 from the cloud".into(),
        },
        Step::Refused => RunCommand::RecordRefusedReport {
            attempt: attempt_of(true),
            reason: "stale attempt".into(),
        },
        Step::Status(c, s) => RunCommand::RecordStatusReported {
            context: ["CI - linux", "CI - windows"][*c].into(),
            state: ["pending", "success", "error"][*s].into(),
            description: String::new(),
            check_run_id: None,
        },
    })
}

/// The longest a deadline recorded at `at` may lie ahead, by kind and event.
fn within_limit(event: &RunEvent, policy: &Policy, platform: &Platform) -> bool {
    let (at, deadline, slack) = match event {
        RunEvent::Queued(e) => (e.at, e.deadline, Duration::zero()),
        RunEvent::ArtifactFetched(e) => (e.at, e.deadline, Duration::zero()),
        RunEvent::VmRequested(e) => (e.at, e.deadline, Duration::zero()),
        RunEvent::VmCreated(e) => (e.at, e.deadline, Duration::zero()),
        RunEvent::Progress(e) => (e.at, e.deadline, Duration::zero()),
        RunEvent::SampleResult(e) => (e.at, e.deadline, Duration::zero()),
        // A retry's queue wait starts after its backoff, itself at most max_delay.
        RunEvent::RetryScheduled(e) => (e.at, e.deadline, policy.retry.max_delay),
        _ => return true,
    };
    deadline.at <= at + policy.deadlines.limit(deadline.kind, platform) + slack
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
        .single()
        .expect("valid")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn run_invariants_hold_for_any_command_sequence(steps in prop::collection::vec(step(), 1..80)) {
        let run_id = RunId::derived("property");
        let policy = Policy::default();
        let platform = Platform::new("linux").expect("valid");
        let mut now = start();
        let mut state = RunState::default();
        let mut events: Vec<RunEvent> = Vec::new();
        let mut finals = 0;
        let mut vm_requests_per_attempt = std::collections::BTreeMap::<u32, u32>::new();

        for step in std::iter::once(Step::Queue).chain(steps) {
            if let Step::Wait(minutes) = step {
                now += Duration::minutes(i64::from(minutes));
                continue;
            }
            let Some(command) = concrete(&step, &state, run_id) else { continue };
            let ctx = Context { now, policy: policy.clone() };
            let Ok(decided) = sp_domain::decide(&state, &command, &ctx) else { continue };
            for event in decided {
                let was_final = state.is_final();
                prop_assert!(!was_final || event.is_cleanup_or_reporting(),
                    "{} recorded after the final event", event.type_name());
                if event.is_final() {
                    finals += 1;
                }
                if let RunEvent::VmRequested(e) = &event {
                    *vm_requests_per_attempt.entry(e.attempt).or_default() += 1;
                }
                prop_assert!(within_limit(&event, &policy, &platform),
                    "deadline beyond its limit in {event:?}");
                let before = state.version;
                state = state.evolve(&event);
                prop_assert_eq!(state.version, before + 1, "versions increase by one");
                events.push(event);

                prop_assert!(finals <= 1, "two final events");
                prop_assert_eq!(state.is_final(), finals == 1);
                prop_assert!(state.is_final() || state.deadline().is_some(),
                    "a non-final run without a deadline");
            }
            // Checked per decision: the final event comes first, its compensation after.
            if let Some(run) = &state.run && state.is_final() {
                prop_assert_eq!(run.live_vms().count(), 0, "a final run left a VM nobody deletes");
            }
        }
        prop_assert!(vm_requests_per_attempt.values().all(|n| *n == 1), "two VMs for one attempt: {vm_requests_per_attempt:?}");

        // Stored and read back through the codec, the events fold to the same state.
        let reread: Vec<RunEvent> = events
            .iter()
            .map(|e| {
                let enc = e.encode();
                RunEvent::decode(enc.event_type, enc.schema_version, &enc.data.to_string()).expect("decodes")
            })
            .collect();
        prop_assert_eq!(&reread, &events);
        prop_assert_eq!(RunState::replay(&reread), state);
    }
}
