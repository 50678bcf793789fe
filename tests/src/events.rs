//! One example of every variant of every stored event family, for the tests
//! that store and read them back on both backends.
//!
//! [`Family::check_covered`] compares the examples with the enum's variant
//! count (`strum::EnumCount`), so a variant added without an example fails the
//! codec test instead of going untested.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sp_domain::access::{AccessEvent, Role};
use sp_domain::blocklist::BlocklistEvent;
use sp_domain::catalogue::{
    CatalogueEvent, OutputDefinition, PlatformBaseline, Sample, TestDefinition,
};
use sp_domain::codec::EventSchema;
use sp_domain::delivery::{BuildEvent, DeliveryEvent, DeliveryOutcome};
use sp_domain::notices::NoticeEvent;
use sp_domain::platform::{MaintenanceChange, PlatformEvent};
use sp_domain::pull_request::{
    Closed, CommentFailed, CommentWritten, HeadObserved, PlannedRun, PullRequestEvent,
};
use sp_domain::retention::{FileKind, RetentionEvent};
use sp_domain::run::events::*;
use sp_domain::verdict::{CategoryCounts, OutputProduced};
use sp_domain::{
    Counts, Deadline, DeadlineKind, ErrorClass, ExpectedOutput, FailureReason, InputKind, Platform,
    ProducedOutput, RegressionTest, RunEvent, RunId, RunnerStage, SampleRef, Stage, TestResult,
    Trigger, Verdict,
};

/// A stored event in the shape the store keeps it: family, type, version, data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredShape {
    pub family: String,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
}

/// The examples of one family, encoded, with a way to decode them again.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    /// The stream examples are appended to.
    pub stream: &'static str,
    pub encoded: Vec<StoredShape>,
    /// Decode a stored (type, version, data) and encode it again: equal to
    /// the input when the family reads what it writes.
    pub reencode: fn(&str, u32, &str) -> Result<StoredShape, String>,
    variants_covered: usize,
    variants: usize,
}

impl Family {
    fn of<E: EventSchema>(name: &'static str, stream: &'static str, examples: Vec<E>) -> Family {
        let covered: HashSet<_> = examples.iter().map(std::mem::discriminant).collect();
        Family {
            name,
            stream,
            encoded: examples
                .iter()
                .map(|e| {
                    let enc = e.encode();
                    StoredShape {
                        family: name.to_string(),
                        event_type: enc.event_type.to_string(),
                        schema_version: enc.schema_version,
                        data: enc.data,
                    }
                })
                .collect(),
            reencode: |t, v, data| {
                let e = E::decode(t, v, data).map_err(|e| e.to_string())?;
                let enc = e.encode();
                Ok(StoredShape {
                    family: String::new(),
                    event_type: enc.event_type.to_string(),
                    schema_version: enc.schema_version,
                    data: enc.data,
                })
            },
            variants_covered: covered.len(),
            variants: E::COUNT,
        }
    }

    /// Every variant of the enum has an example here.
    pub fn check_covered(&self) {
        assert_eq!(
            self.variants_covered, self.variants,
            "{}: {} of {} variants have an example in tests/src/events.rs; add one for the new variant",
            self.name, self.variants_covered, self.variants
        );
    }
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 10, minute, 0)
        .single()
        .expect("a valid time")
}

fn deadline(kind: DeadlineKind) -> Deadline {
    Deadline { at: at(59), kind }
}

fn run_id(n: u128) -> RunId {
    RunId(uuid::Uuid::from_u128(
        0x6f2d_3a7e_0000_4000_8000_0000_0000_0000 | n,
    ))
}

fn linux() -> Platform {
    Platform::new("linux").expect("a platform name")
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn regression_test() -> RegressionTest {
    RegressionTest {
        id: "upper-fox".into(),
        sample: SampleRef {
            sha256: HASH.into(),
            name: "fox.txt".into(),
            location: Some("samples/fox.txt".into()),
        },
        command: "{program} {sample} -o upper.txt".into(),
        input: InputKind::Stdin,
        expected_exit_code: 0,
        categories: vec!["basic".into()],
        outputs: vec![ExpectedOutput {
            name: "upper.txt".into(),
            approved_sha256: HASH.into(),
            variants: vec![HASH.replace('9', "8")],
            ignore: false,
        }],
        output: Default::default(),
        output_pattern: None,
    }
}

fn run_events() -> Vec<RunEvent> {
    let failure = |message: &str| FailureReason {
        stage: Stage::Testing,
        class: ErrorClass::Permanent,
        message: message.into(),
    };
    vec![
        RunEvent::Queued(Queued {
            at: at(0),
            run_id: run_id(1),
            repository: "CCExtractor/ccextractor".into(),
            commit_sha: SHA.into(),
            platform: linux(),
            trigger: Trigger::PullRequest {
                number: 7,
                head_ref: "fix".into(),
            },
            priority: 1,
            tests: vec![regression_test()],
            delivery_id: Some("d-1".into()),
            ancestry: sp_domain::Ancestry {
                base_branch: Some("master".into()),
                ancestors: vec!["f".repeat(40)],
            },
            deadline: deadline(DeadlineKind::ArtifactWait),
        }),
        RunEvent::Superseded(Superseded {
            at: at(1),
            by: run_id(2),
            reason: "a newer commit".into(),
        }),
        RunEvent::Cancelled(Cancelled {
            at: at(2),
            reason: "the pull request was closed".into(),
        }),
        RunEvent::ArtifactFetched(ArtifactFetched {
            at: at(3),
            size_bytes: 1234,
            sha256: HASH.into(),
            location: "artifacts/x".into(),
            deadline: deadline(DeadlineKind::QueueWait),
        }),
        RunEvent::ArtifactUnavailable(ArtifactUnavailable {
            at: at(4),
            class: ErrorClass::Retryable,
            reason: "no build yet".into(),
        }),
        RunEvent::VmRequested(VmRequested {
            at: at(5),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
            idempotency_key: "key-1".into(),
            deadline: deadline(DeadlineKind::VmCreate),
            runner_credential_sha256: HASH.into(),
        }),
        RunEvent::VmCreated(VmCreated {
            at: at(6),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
            deadline: deadline(DeadlineKind::Boot),
        }),
        RunEvent::VmCreateFailed(VmCreateFailed {
            at: at(7),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
            class: ErrorClass::Quota,
            message: "quota exceeded".into(),
        }),
        RunEvent::Progress(Progress {
            at: at(8),
            attempt: 1,
            stage: RunnerStage::Testing,
            message: "running upper-fox".into(),
            done: 1,
            total: 3,
            deadline: deadline(DeadlineKind::Heartbeat),
        }),
        RunEvent::SampleResult(SampleResult {
            at: at(9),
            attempt: 1,
            result: TestResult {
                test_id: "upper-fox".into(),
                exit_code: 3,
                runtime_ms: 42,
                outputs: vec![
                    ProducedOutput {
                        name: "upper.txt".into(),
                        produced: OutputProduced::Sha256 {
                            sha256: HASH.into(),
                        },
                    },
                    ProducedOutput {
                        name: "other.txt".into(),
                        produced: OutputProduced::Missing,
                    },
                ],
                timed_out: true,
                input_error: None,
            },
            deadline: deadline(DeadlineKind::Heartbeat),
        }),
        // A result of the later test kinds: captured output over the cap,
        // and a UDP input that could not be delivered.
        RunEvent::SampleResult(SampleResult {
            at: at(9),
            attempt: 1,
            result: TestResult {
                test_id: "udp-stdout".into(),
                exit_code: -1,
                runtime_ms: 10_000,
                outputs: vec![ProducedOutput {
                    name: "stdout".into(),
                    produced: OutputProduced::TooLarge {
                        limit_bytes: 256 << 20,
                    },
                }],
                timed_out: false,
                input_error: Some("nothing listened on UDP port 40000 within 10 s".into()),
            },
            deadline: deadline(DeadlineKind::Heartbeat),
        }),
        RunEvent::TimedOut(TimedOut {
            at: at(10),
            attempt: 1,
            stage: Stage::Booting,
            deadline: deadline(DeadlineKind::Boot),
        }),
        RunEvent::RetryScheduled(RetryScheduled {
            at: at(11),
            next_attempt: 2,
            not_before: at(12),
            reason: "the VM did not boot".into(),
            deadline: deadline(DeadlineKind::QueueWait),
        }),
        RunEvent::VmDeleteRequested(VmDeleteRequested {
            at: at(13),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
            reason: "attempt over".into(),
        }),
        RunEvent::VmDeleted(VmDeleted {
            at: at(14),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
        }),
        RunEvent::VmDeleteFailed(VmDeleteFailed {
            at: at(15),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
            class: ErrorClass::Retryable,
            message: "503 from the cloud".into(),
        }),
        RunEvent::VmAbandoned(VmAbandoned {
            at: at(15),
            attempt: 1,
            vm_name: "sp-linux-1".into(),
            failures: 10,
            reason: "10 deletions failed; last error: 503 from the cloud".into(),
        }),
        RunEvent::Failed(Failed {
            at: at(16),
            reason: failure("the artifact is not a zip"),
        }),
        RunEvent::Completed(Completed {
            at: at(17),
            attempt: 2,
            verdict: Verdict::Fail,
            counts: Counts {
                passed: 2,
                failed: 1,
                by_category: BTreeMap::from([(
                    "basic".to_string(),
                    CategoryCounts {
                        passed: 2,
                        failed: 1,
                    },
                )]),
            },
        }),
        RunEvent::StatusReported(StatusReported {
            at: at(18),
            context: "CI - linux".into(),
            state: "check:failure".into(),
            description: "1 of 3 failed, 1 broken here".into(),
            check_run_id: Some(4242),
        }),
        RunEvent::ReportRefused(ReportRefused {
            at: at(19),
            attempt: 1,
            reason: "from an old attempt".into(),
        }),
        RunEvent::StatusReportFailed(StatusReportFailed {
            at: at(20),
            context: "CI - linux".into(),
            state: "failure".into(),
            class: ErrorClass::Permanent,
            message: "422 from GitHub".into(),
        }),
    ]
}

fn catalogue_events() -> Vec<CatalogueEvent> {
    vec![
        CatalogueEvent::SampleAdded {
            at: at(0),
            sample: Sample {
                sha256: HASH.into(),
                name: "fox.txt".into(),
                extension: "txt".into(),
                size_bytes: 20,
                tags: vec!["demo".into()],
                url: Some("https://example.org/fox.txt".into()),
            },
        },
        CatalogueEvent::TestDefined {
            at: at(1),
            test: TestDefinition {
                id: "upper-fox".into(),
                sample: HASH.into(),
                command: "{program} {sample}".into(),
                input: InputKind::File,
                expected_exit_code: 0,
                categories: vec!["basic".into()],
                active: true,
                description: "upper-cases a fox".into(),
                platforms: Some(vec!["linux".into()]),
                outputs: vec![OutputDefinition {
                    name: "upper.txt".into(),
                    approved_sha256: HASH.into(),
                    variants: vec![],
                    ignore: true,
                    platforms: BTreeMap::from([(
                        "windows".to_string(),
                        PlatformBaseline {
                            approved_sha256: Some(HASH.replace('9', "7")),
                            variants: vec![HASH.replace('9', "6")],
                        },
                    )]),
                }],
                output: Default::default(),
                output_pattern: None,
            },
        },
        CatalogueEvent::TestActivationChanged {
            at: at(2),
            test_id: "upper-fox".into(),
            active: false,
            reason: "flaky sample".into(),
        },
        CatalogueEvent::TestDefined {
            at: at(2),
            test: TestDefinition {
                id: "captions-708".into(),
                sample: HASH.into(),
                command: "{exe} -708 {sample} -udp {port}".into(),
                input: InputKind::Udp,
                expected_exit_code: 0,
                categories: vec!["cea708".into()],
                active: true,
                description: String::new(),
                platforms: None,
                outputs: vec![OutputDefinition {
                    name: "{base}_1.srt".into(),
                    approved_sha256: HASH.into(),
                    variants: vec![],
                    ignore: false,
                    platforms: BTreeMap::new(),
                }],
                output: sp_domain::OutputKind::Cea708,
                output_pattern: Some("{base}_*.srt".into()),
            },
        },
        CatalogueEvent::OutputAccepted {
            at: at(3),
            test_id: "upper-fox".into(),
            platform: "linux".into(),
            output: "upper.txt".into(),
            sha256: HASH.into(),
            as_baseline: true,
            run_id: run_id(3),
            accepted_by: "user:alice".into(),
            reason: "the new output is right".into(),
        },
    ]
}

fn delivery_events() -> Vec<DeliveryEvent> {
    vec![DeliveryEvent::DeliveryHandled {
        at: at(0),
        event: "push".into(),
        action: Some("synchronize".into()),
        repository: Some("CCExtractor/ccextractor".into()),
        sender: Some("cfsmp3".into()),
        outcome: DeliveryOutcome::Queued {
            runs: vec![run_id(4)],
            superseded: vec![run_id(5)],
        },
    }]
}

fn build_events() -> Vec<BuildEvent> {
    vec![BuildEvent::BuildFinished {
        at: at(0),
        repository: "CCExtractor/ccextractor".into(),
        commit_sha: SHA.into(),
        workflow_run_id: 99,
        workflow: "Build".into(),
        conclusion: "success".into(),
        branch: Some("master".into()),
    }]
}

fn pull_request_events() -> Vec<PullRequestEvent> {
    vec![
        PullRequestEvent::HeadObserved(HeadObserved {
            at: at(0),
            seq: 1,
            sha: SHA.into(),
            head_ref: "fix".into(),
            updated_at: at(0),
            author: "dev".into(),
            runs: vec![PlannedRun {
                platform: linux(),
                run_id: run_id(6),
            }],
        }),
        PullRequestEvent::PullRequestClosed(Closed {
            at: at(1),
            updated_at: at(1),
        }),
        PullRequestEvent::CommentWritten(CommentWritten {
            at: at(2),
            comment_id: 1_000_001,
            head_seq: 1,
            posted: true,
            body_sha256: "c".repeat(64),
        }),
        PullRequestEvent::CommentFailed(CommentFailed {
            at: at(3),
            head_seq: 1,
            class: ErrorClass::Retryable,
            message: "create pull request comment: HTTP 502".into(),
        }),
    ]
}

fn blocklist_events() -> Vec<BlocklistEvent> {
    vec![
        BlocklistEvent::UserBlocked {
            at: at(0),
            login: "spammer".into(),
            reason: "spam".into(),
        },
        BlocklistEvent::UserUnblocked {
            at: at(1),
            login: "spammer".into(),
        },
    ]
}

fn platform_events() -> Vec<PlatformEvent> {
    let change = |note: &str| MaintenanceChange {
        at: at(0),
        platform: linux(),
        note: note.into(),
    };
    vec![
        PlatformEvent::PlatformPaused(change("image update")),
        PlatformEvent::PlatformResumed(change("done")),
    ]
}

fn notice_events() -> Vec<NoticeEvent> {
    vec![NoticeEvent::NoticeRecorded {
        at: at(0),
        kind: "orphan_vm_deleted".into(),
        message: "deleted sp-linux-9 of an unknown run".into(),
    }]
}

fn access_events() -> Vec<AccessEvent> {
    vec![
        AccessEvent::TokenCreated {
            at: at(0),
            name: "alice".into(),
            scopes: vec!["read".into(), "operate".into()],
        },
        AccessEvent::TokenRevoked {
            at: at(1),
            name: "alice".into(),
        },
        AccessEvent::RoleGranted {
            at: at(2),
            login: "Alice".into(),
            role: Role::Maintainer,
        },
        AccessEvent::RoleRevoked {
            at: at(3),
            login: "Alice".into(),
            role: Role::Maintainer,
        },
        AccessEvent::SignedIn {
            at: at(4),
            login: "Alice".into(),
            github_id: 4242,
        },
        AccessEvent::SignedOut {
            at: at(5),
            login: "Alice".into(),
        },
    ]
}

fn retention_events() -> Vec<RetentionEvent> {
    vec![
        RetentionEvent::RunFilesDeleted {
            at: at(0),
            run: run_id(1),
            kind: FileKind::Log,
            deleted: vec!["1/runner.log".into()],
            kept: vec![],
            policy: "log files are kept 30 days after their run finished".into(),
        },
        RetentionEvent::FileDeleteFailed {
            at: at(1),
            run: run_id(1),
            kind: FileKind::Output,
            key: "ab".repeat(32),
            class: ErrorClass::Retryable,
            message: "the object store answered 503".into(),
        },
    ]
}

/// Every stored event family, each with one example of each variant.
pub fn families() -> Vec<Family> {
    vec![
        Family::of(
            "run",
            "run-6f2d3a7e-0000-4000-8000-000000000001",
            run_events(),
        ),
        Family::of("catalogue", "catalogue", catalogue_events()),
        Family::of("delivery", "delivery-d-1", delivery_events()),
        Family::of(
            "build",
            "build-ccextractor/ccextractor@0123",
            build_events(),
        ),
        Family::of(
            "pull_request",
            "pr-ccextractor/ccextractor#7",
            pull_request_events(),
        ),
        Family::of("blocklist", "blocked-users", blocklist_events()),
        Family::of("platform", "platform-linux", platform_events()),
        Family::of("notice", "notices", notice_events()),
        Family::of("access", "access", access_events()),
        Family::of("retention", "retention", retention_events()),
    ]
}
