//! Retention on both backends: a finished run's build artifact, produced
//! outputs and runner logs go once the policy lets them (here: at once,
//! except for the last run of each branch on each platform), each run's
//! deletions recorded as an event; never an output the catalogue approves,
//! a file a kept run still holds, or a sample.

use std::time::Duration;

use serde_json::{Value, json};
use sp_domain::retention::Rule;
use sp_eventstore::RecordedEvent;
use sp_files::{Files, Kind, LogName};
use sp_tests::github::sha;
use sp_tests::{Backend, TestPlatform, demo_dir, demo_result, eventually_within};

/// An output the demo catalogue approves (upper-fox's `upper.txt`, stored from
/// `expected/fox-upper.txt` when the catalogue is imported).
const APPROVED: &str = "ca987954f4216651c0ca80a39639327c959d90074fc7618c2aab3fbbbb26dd38";

async fn put(files: &Files, content: &'static str) -> String {
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        content.as_bytes(),
    ))]);
    files
        .put(Kind::Output, None, 1 << 20, body)
        .await
        .expect("store an output")
        .sha256
}

async fn put_log(files: &Files, run: &str) -> LogName {
    let log = LogName {
        run: run.parse().expect("a run id"),
        attempt: 1,
        name: "runner.log".into(),
    };
    let body =
        futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"ran\n"))]);
    files
        .put_log(&log, 1 << 20, body)
        .await
        .expect("store a log");
    log
}

/// Retention's records of `run`, once there is one per kind.
async fn deletions_of(p: &TestPlatform, run: &str) -> Vec<Value> {
    eventually_within(
        Duration::from_secs(30),
        "retention deletes the run's files",
        || async {
            let events: Vec<RecordedEvent> =
                p.db.database
                    .store
                    .read_stream("retention", 1)
                    .await
                    .expect("the retention stream");
            let of_run: Vec<Value> = events
                .iter()
                .filter(|e| e.event_type == "RunFilesDeleted")
                .map(|e| e.data.to_value())
                .filter(|d| d["run"] == run)
                .collect();
            (of_run.len() == 3).then_some(of_run)
        },
    )
    .await
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} record in {records:?}"))
}

fn keys(record: &Value, field: &str) -> Vec<String> {
    let mut keys: Vec<String> = record[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    keys.sort();
    keys
}

async fn only_what_the_policy_allows_is_deleted(backend: Backend) {
    let artifacts = tempfile::tempdir().expect("temp dir");
    for (digit, content) in [('2', "build 2"), ('3', "build 3"), ('4', "build 4")] {
        std::fs::write(
            artifacts.path().join(format!("{}.bin", sha(digit))),
            content,
        )
        .expect("an artifact");
    }
    let source = format!("file://{}/{{commit}}.bin", artifacts.path().display());
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s.artifact_source = source;
        let at_once = Rule {
            after_days: 0,
            keep_last: 1,
        };
        s.retention.every_secs = 1;
        s.retention.artifacts = Some(at_once);
        s.retention.outputs = Some(at_once);
        s.retention.logs = Some(at_once);
        s
    })
    .await;
    let files = Files::open(&p.settings.object_store).expect("the object store");
    let samples = std::fs::read_dir(std::path::Path::new(&p.settings.object_store).join("samples"))
        .expect("the samples")
        .count();
    let own = put(&files, "only the first run made this").await;
    let shared = put(&files, "both runs made this").await;
    let later = put(&files, "only the second run made this").await;
    assert!(
        files
            .exists(Kind::Output, APPROVED)
            .await
            .expect("head")
            .is_some()
    );

    // The first run: alone on master, it keeps its files however old.
    let first = p.push("retention-1", '2').await;
    let first_log = put_log(&files, &first).await;
    p.finish_run(
        &first,
        &[
            demo_result("upper-hello", 0, APPROVED),
            demo_result("upper-fox", 0, &own),
            demo_result("upper-broken", 0, &shared),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        files
            .exists(Kind::Output, &own)
            .await
            .expect("head")
            .is_some()
    );
    assert!(files.log_content(&first_log).await.expect("read").is_some());

    // A second run on master: the first is no longer the last, and goes.
    let second = p.push("retention-2", '3').await;
    let second_log = put_log(&files, &second).await;
    p.finish_run(
        &second,
        &[
            demo_result("upper-hello", 0, "equal"),
            demo_result("upper-fox", 0, &later),
            demo_result("upper-broken", 0, &shared),
        ],
    )
    .await;
    let records = deletions_of(&p, &first).await;
    let outputs = of_kind(&records, "output");
    assert_eq!(keys(outputs, "deleted"), vec![own.clone()]);
    let mut kept = vec![APPROVED.to_string(), shared.clone()];
    kept.sort();
    assert_eq!(
        keys(outputs, "kept"),
        kept,
        "approved, or held by the kept run"
    );
    assert!(
        outputs["policy"]
            .as_str()
            .is_some_and(|p| p.contains("kept 0 days") && p.contains("last 1 finished runs")),
        "{outputs}"
    );
    assert_eq!(keys(of_kind(&records, "log"), "deleted"), ["1/runner.log"]);
    assert_eq!(keys(of_kind(&records, "artifact"), "deleted").len(), 1);

    assert!(
        files
            .exists(Kind::Output, &own)
            .await
            .expect("head")
            .is_none()
    );
    assert!(
        files
            .exists(Kind::Output, &shared)
            .await
            .expect("head")
            .is_some()
    );
    assert!(
        files
            .exists(Kind::Output, APPROVED)
            .await
            .expect("head")
            .is_some()
    );
    assert!(
        files
            .exists(Kind::Output, &later)
            .await
            .expect("head")
            .is_some()
    );
    assert!(files.log_content(&first_log).await.expect("read").is_none());
    assert!(
        files
            .log_content(&second_log)
            .await
            .expect("read")
            .is_some()
    );
    let artifacts_left =
        std::fs::read_dir(std::path::Path::new(&p.settings.object_store).join("artifacts"))
            .expect("the artifacts")
            .count();
    assert_eq!(artifacts_left, 1, "the second run's artifact stays");
    p.caught_up().await;
    let diff = p
        .query(
            "query($run: ID!) { outputDiff(runId: $run, testId: \"upper-fox\", output: \"upper.txt\") { note producedUrl } }",
            json!({ "run": first }),
        )
        .await;
    assert!(
        diff["outputDiff"]["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("the produced content was deleted by retention on ")),
        "a deleted output is said to be, not a broken link: {diff}"
    );
    assert_eq!(diff["outputDiff"]["producedUrl"], Value::Null);

    // A third run: the second goes, and with it the output both held.
    let third = p.push("retention-3", '4').await;
    p.finish_run(&third, &[demo_result("upper-hello", 0, "equal")])
        .await;
    let records = deletions_of(&p, &second).await;
    let mut gone = vec![shared.clone(), later.clone()];
    gone.sort();
    assert_eq!(keys(of_kind(&records, "output"), "deleted"), gone);
    assert!(
        files
            .exists(Kind::Output, &shared)
            .await
            .expect("head")
            .is_none()
    );
    assert!(
        files
            .exists(Kind::Output, APPROVED)
            .await
            .expect("head")
            .is_some()
    );

    // Samples are never touched; the run page says what retention did.
    let samples_now =
        std::fs::read_dir(std::path::Path::new(&p.settings.object_store).join("samples"))
            .expect("the samples")
            .count();
    assert_eq!(samples_now, samples);
    p.caught_up().await;
    let shown = p
        .query(
            "query($id: ID!) { run(id: $id) { retention { kind deleted kept deletedAt policy } } }",
            json!({ "id": first }),
        )
        .await;
    let shown = shown["run"]["retention"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|r| r["kind"] == "LOG" && r["deleted"] == 1)
    );

    // The rebuilt model is the same.
    let live = p.read_models().await;
    p.rebuild_read_models().await;
    assert_eq!(p.read_models().await, live);
}

sp_tests::on_both_backends!(only_what_the_policy_allows_is_deleted);
