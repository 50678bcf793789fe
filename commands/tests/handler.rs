//! The write side on both backends: decide, append, retry on races, and
//! recognise a repeated request.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use sp_commands::{CommandError, Envelope, Handler, ManualClock};
use sp_domain::{
    Platform, Policy, QueueRun, Rejection, RunCommand, RunId, RunState, RunnerStage, Trigger,
};
use sp_eventstore::testing::TestDb;

fn queue(run_id: RunId) -> RunCommand {
    RunCommand::Queue(QueueRun {
        run_id,
        repository: "CCExtractor/ccextractor".into(),
        commit_sha: "d".repeat(40),
        platform: Platform::new("linux").expect("valid"),
        trigger: Trigger::Push {
            branch: "master".into(),
        },
        priority: 0,
        tests: vec![],
        delivery_id: None,
        ancestry: Default::default(),
    })
}

fn handler(db: &TestDb) -> (Handler<RunState>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
            .single()
            .expect("time"),
    ));
    (
        Handler::new(db.store(), Policy::default(), clock.clone()),
        clock,
    )
}

async fn records_decisions_and_replays_them(db: TestDb) {
    let (handler, clock) = handler(&db);
    let run = RunId::derived("handler-1");
    let stream = run.stream();
    let who = Envelope::new("user:alice");

    let queued = handler
        .execute(&stream, &queue(run), &who)
        .await
        .expect("queue");
    assert_eq!(queued.version, 1);
    assert_eq!(queued.events.len(), 1);

    match handler.execute(&stream, &queue(run), &who).await {
        Err(CommandError::Rejected(Rejection::AlreadyQueued)) => {}
        other => panic!("second queue: {other:?}"),
    }
    clock.advance(Duration::minutes(61));
    let failed = handler
        .execute(
            &stream,
            &RunCommand::FireDeadline,
            &Envelope::new("system:timer"),
        )
        .await
        .expect("deadline fires");
    assert!(failed.state.is_final());

    let loaded = handler.load(&stream).await.expect("load");
    assert_eq!(loaded.version, failed.version);
    assert_eq!(loaded.state, failed.state);
    let recorded = db.store().read_stream(&stream, 1).await.expect("read");
    assert_eq!(recorded[0].metadata.actor, "user:alice");
    assert_eq!(recorded[1].metadata.actor, "system:timer");
}

async fn a_repeated_request_records_nothing_new(db: TestDb) {
    let (handler, _) = handler(&db);
    let run = RunId::derived("handler-2");
    let stream = run.stream();
    let delivery = Envelope::new("github:octocat").idempotent("delivery-42/linux");
    let first = handler
        .execute(&stream, &queue(run), &delivery)
        .await
        .expect("first");
    assert!(!first.already_applied);
    let again = handler
        .execute(&stream, &queue(run), &delivery)
        .await
        .expect("again");
    assert!(again.already_applied);
    assert!(again.events.is_empty());
    assert_eq!(
        db.store()
            .read_stream(&stream, 1)
            .await
            .expect("read")
            .len(),
        1
    );
}

async fn racing_commands_on_one_stream_all_land(db: TestDb) {
    let (handler, _) = handler(&db);
    let run = RunId::derived("handler-3");
    let stream = run.stream();
    let who = Envelope::new("system:test");
    handler
        .execute(&stream, &queue(run), &who)
        .await
        .expect("queue");
    handler
        .execute(
            &stream,
            &RunCommand::RecordArtifactFetched {
                size_bytes: 1,
                sha256: "a".into(),
                location: "l".into(),
            },
            &who,
        )
        .await
        .expect("artifact");
    handler
        .execute(
            &stream,
            &RunCommand::RequestVm {
                runner_credential_sha256: "h".into(),
            },
            &who,
        )
        .await
        .expect("vm");

    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let handler = handler.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            handler
                .execute(
                    &stream,
                    &RunCommand::RecordProgress {
                        attempt: 1,
                        stage: RunnerStage::Preparing,
                        message: format!("step {i}"),
                        done: 0,
                        total: 1,
                    },
                    &Envelope::new("runner:test"),
                )
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("every racing report lands");
    }
    let loaded = handler.load(&stream).await.expect("load");
    assert_eq!(loaded.version, 3 + 8);
}

/// A handler that keeps folds decides exactly as one that folds the whole
/// stream for every command, also when another writer (a second replica)
/// appends behind its back, a request is repeated, and streams are dropped
/// from its memory.
async fn kept_folds_decide_as_full_folds(db: TestDb) {
    let (plain, clock) = handler(&db);
    let kept = Handler::<RunState>::new(db.store(), Policy::default(), clock.clone())
        // One stream kept: the second stream keeps pushing the first out.
        .keeping_folds(1);
    let runs = [RunId::derived("kept-1"), RunId::derived("kept-2")];
    let steps: Vec<(usize, RunCommand)> = vec![
        (0, queue(runs[0])),
        (1, queue(runs[1])),
        (
            0,
            RunCommand::RecordArtifactFetched {
                size_bytes: 0,
                sha256: "e".repeat(64),
                location: "none".into(),
            },
        ),
        (
            0,
            RunCommand::RequestVm {
                runner_credential_sha256: "c".repeat(64),
            },
        ),
        (
            0,
            RunCommand::RecordVmCreated {
                attempt: 1,
                vm_name: "vm-1".into(),
            },
        ),
        (
            0,
            RunCommand::RecordProgress {
                attempt: 1,
                stage: RunnerStage::Testing,
                message: String::new(),
                done: 0,
                total: 0,
            },
        ),
        (0, RunCommand::FireDeadline),
        (1, RunCommand::FireDeadline),
        (
            0,
            RunCommand::Cancel {
                reason: "done".into(),
            },
        ),
    ];
    for (i, (which, command)) in steps.iter().enumerate() {
        let stream = runs[*which].stream();
        // Writers take turns, so the kept fold is often behind the stream.
        let writer = if i % 2 == 0 { &kept } else { &plain };
        let envelope = Envelope::new("user:alice").idempotent(format!("step-{i}"));
        let _ = writer.execute(&stream, command, &envelope).await;
        // The same request again, through the other handler: nothing new.
        let other = if i % 2 == 0 { &plain } else { &kept };
        let again = other.execute(&stream, command, &envelope).await;
        assert!(
            again.as_ref().map_or(true, |o| o.events.is_empty()),
            "step {i}: a repeated request recorded {again:?}"
        );
        clock.advance(Duration::minutes(31));
        for run in &runs {
            let (a, b) = (
                kept.load(&run.stream()).await.expect("kept"),
                plain.load(&run.stream()).await.expect("full"),
            );
            assert_eq!(a.version, b.version, "step {i}");
            assert_eq!(a.state, b.state, "step {i}");
            assert_eq!(a.event_ids, b.event_ids, "step {i}");
        }
    }
}

// Each on the runtime it always had: the first two on the current thread,
// the racing one on four workers.
sp_eventstore::on_both_backends! {
    #[tokio::test]
    db: records_decisions_and_replays_them, a_repeated_request_records_nothing_new,
        kept_folds_decide_as_full_folds;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    db: racing_commands_on_one_stream_all_land;
}
