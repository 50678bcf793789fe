//! `audit export`: the log as JSON Lines, whole or filtered, equal to what
//! the store holds.

use serde_json::Value;
use sp_eventstore::audit::{Filter, ImportError, export, import, verify};
use sp_eventstore::testing::TestDb;
use sp_eventstore::{ExpectedVersion, NewEvent};
use sp_tests::{Backend, TestPlatform};

async fn exported(p: &TestPlatform, filter: &Filter) -> Vec<Value> {
    lines_of(&*p.db.store(), filter).await
}

async fn lines_of(store: &dyn sp_eventstore::EventStore, filter: &Filter) -> Vec<Value> {
    let mut out = Vec::new();
    let mut reached = 0;
    let written = export(store, filter, &mut out, |at| reached = at)
        .await
        .expect("export");
    let text = String::from_utf8(out).expect("UTF-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len() as u64, written);
    assert!(reached > 0, "progress reached the log's end");
    lines
}

async fn the_log_exports_as_json_lines_whole_and_filtered(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s
    })
    .await;
    let run = p.push("export-1", 'a').await;
    p.pull_request("export-2", "opened", 7, ('b', 'a'), "2026-11-30T10:00:00Z")
        .await;
    let everything = sp_eventstore::testing::read_everything(&*p.db.store()).await;

    let all = exported(&p, &Filter::default()).await;
    assert_eq!(all.len(), everything.len());
    for (line, event) in all.iter().zip(&everything) {
        assert_eq!(line["position"], event.position);
        assert_eq!(line["stream"], event.stream_id.as_str());
        assert_eq!(line["version"], event.stream_version);
        assert_eq!(line["id"], event.event_id.to_string());
        assert_eq!(line["type"], event.event_type.as_str());
        assert_eq!(line["schema_version"], event.schema_version);
        assert_eq!(line["data"], event.data.to_value(), "data as stored");
        assert_eq!(line["metadata"]["actor"], event.metadata.actor.as_str());
        assert!(line["recorded_at"].is_string(), "{line}");
    }

    let runs = exported(
        &p,
        &Filter {
            stream_prefix: Some("run-".into()),
            ..Filter::default()
        },
    )
    .await;
    let expected = everything
        .iter()
        .filter(|e| e.stream_id.starts_with("run-"))
        .count();
    assert!(expected >= 2, "a run per delivery");
    assert_eq!(runs.len(), expected);
    assert!(
        runs.iter()
            .any(|l| l["stream"] == format!("run-{run}").as_str())
    );

    let (from, to) = (everything[1].position, everything[3].position);
    let window = exported(
        &p,
        &Filter {
            from: Some(from),
            to: Some(to),
            ..Filter::default()
        },
    )
    .await;
    let positions: Vec<i64> = window
        .iter()
        .filter_map(|l| l["position"].as_i64())
        .collect();
    let expected: Vec<i64> = everything
        .iter()
        .map(|e| e.position)
        .filter(|at| (from..=to).contains(at))
        .collect();
    assert_eq!(positions, expected);
    p.stop().await;
}

/// A log moves to a new database of either backend: the same events at the
/// same positions, and, rebuilt there, the same read models.
async fn an_export_imports_into_a_new_database_of_either_backend(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s
    })
    .await;
    p.push("import-1", 'a').await;
    p.pull_request("import-2", "opened", 9, ('c', 'a'), "2026-11-30T10:00:00Z")
        .await;
    // A one-stream append (what commands make), beside the intake's
    // many-stream ones.
    p.db.store()
        .append("notices", ExpectedVersion::Any, &[probe()])
        .await
        .expect("append");
    p.caught_up().await;
    let mut text = Vec::new();
    export(&*p.db.store(), &Filter::default(), &mut text, |_| {})
        .await
        .expect("export");
    let source = lines_of(&*p.db.store(), &Filter::default()).await;
    let last = source
        .iter()
        .filter_map(|l| l["position"].as_i64())
        .max()
        .expect("events");

    for (name, target) in [
        ("sqlite", TestDb::sqlite().await),
        ("postgres", TestDb::postgres().await),
    ] {
        let db = &target.database;
        let imported = import(db, text.as_slice(), |_| {})
            .await
            .unwrap_or_else(|e| panic!("import into {name}: {e}"));
        assert_eq!(imported.events as usize, source.len(), "{name}");
        assert!(imported.verified, "{name}: every line's link was checked");
        let copy = lines_of(&*db.store, &Filter::default()).await;
        assert_eq!(copy, source, "the same log on {name}, links included");
        let chains = verify(&*db.store, |_| {}).await.expect("verify");
        assert_eq!(chains.broken, vec![], "{name}");
        assert_eq!(chains.events as usize, source.len());

        let again = import(db, text.as_slice(), |_| {})
            .await
            .expect_err("a log that is not empty is refused");
        assert!(
            matches!(again, ImportError::NotEmpty { head } if head == last),
            "{again}"
        );

        let same_backend = matches!(
            (name, backend),
            ("sqlite", Backend::Sqlite) | ("postgres", Backend::Postgres)
        );
        if same_backend {
            let target_models = {
                sp_projections::rebuild(&sp_projections::standard(), db, |_, _| {})
                    .await
                    .expect("rebuild");
                sp_tests::read_model_dump(db).await
            };
            p.rebuild_read_models().await;
            let source_models = p.read_models().await;
            assert_eq!(
                target_models, source_models,
                "read models rebuilt on {name}"
            );
        }
        // Appends go on after the imported positions.
        let appended = db
            .store
            .append("notices", ExpectedVersion::Any, &[probe()])
            .await
            .expect("append after the import");
        assert!(appended.last_position > last, "{name}: {appended:?}");
    }

    // An altered export whose hashes were taken off to hide it is refused.
    let text = String::from_utf8(text).expect("UTF-8");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let last_line = lines.last_mut().expect("lines");
    let mut event: Value = serde_json::from_str(last_line).expect("JSON");
    event.as_object_mut().expect("object").remove("hash");
    *last_line = event.to_string();
    let target = TestDb::sqlite().await;
    let refused = import(&target.database, lines.join("\n").as_bytes(), |_| {})
        .await
        .expect_err("a line without its hash");
    assert!(
        refused
            .to_string()
            .contains("has no hash where the lines before had theirs"),
        "{refused}"
    );
    p.stop().await;
}

fn probe() -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "Probe".into(),
        schema_version: 1,
        data: serde_json::json!({ "at": chrono::Utc::now() }),
        metadata: sp_eventstore::Metadata::new("test", uuid::Uuid::new_v4()),
    }
}

/// An export line of stream `notices` at `version`, at position `version`.
fn line(version: u64) -> String {
    serde_json::json!({
        "position": version, "stream": "notices", "version": version,
        "id": uuid::Uuid::new_v4(), "type": "Probe", "schema_version": 1, "data": {},
        "metadata": { "actor": "a", "correlation_id": uuid::Uuid::new_v4() },
        "recorded_at": "2026-12-07T10:00:00Z",
    })
    .to_string()
}

/// What is not a log is refused with its line, and nothing of it is kept,
/// even after whole batches were written.
async fn a_broken_export_imports_nothing(backend: Backend) {
    let fresh = || async {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    };
    let good: Vec<String> = (1..=2500).map(line).collect();
    let cases = [
        (
            "not an event",
            format!("{}\n{{\"position\": \"two\"}}\n", good.join("\n")),
            2501,
        ),
        (
            "a version skipped",
            format!("{}\n{}\n", good.join("\n"), line(2502)),
            2501,
        ),
        (
            "a hash among lines without",
            format!(
                "{}\n{}\n",
                good.join("\n"),
                line(2501).replace(
                    "\"type\"",
                    &format!("\"hash\":\"{}\",\"type\"", "0".repeat(64))
                )
            ),
            2501,
        ),
        (
            "a position twice",
            format!(
                "{}\n{}\n",
                good.join("\n"),
                line(2500).replace("\"version\":2500", "\"version\":2501")
            ),
            2501,
        ),
    ];
    for (what, text, at) in cases {
        let target = fresh().await;
        let e = import(&target.database, text.as_bytes(), |_| {})
            .await
            .expect_err(what);
        assert!(
            matches!(e, ImportError::Line { line, .. } if line == at),
            "{what}: {e}"
        );
        assert_eq!(
            target.database.store.head_position().await.expect("head"),
            0,
            "{what}: nothing kept"
        );
    }
    // The same lines without the break import.
    let target = fresh().await;
    let n = import(&target.database, good.join("\n").as_bytes(), |_| {})
        .await
        .expect("import");
    assert_eq!(n.events, 2500);
    assert!(!n.verified, "lines without hashes are linked, not verified");
}

sp_tests::on_both_backends!(
    the_log_exports_as_json_lines_whole_and_filtered,
    an_export_imports_into_a_new_database_of_either_backend,
    a_broken_export_imports_nothing,
);
