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

// Each on the runtime it always had: the first two on the current thread,
// the racing one on four workers.
sp_eventstore::on_both_backends! {
    #[tokio::test]
    db: records_decisions_and_replays_them, a_repeated_request_records_nothing_new;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    db: racing_commands_on_one_stream_all_land;
}
