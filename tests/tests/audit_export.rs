//! `audit export`: the log as JSON Lines, whole or filtered, equal to what
//! the store holds.

use serde_json::Value;
use sp_eventstore::export::{Filter, export};
use sp_tests::{Backend, TestPlatform};

async fn exported(p: &TestPlatform, filter: &Filter) -> Vec<Value> {
    let mut out = Vec::new();
    let mut reached = 0;
    let written = export(&*p.db.store(), filter, &mut out, |at| reached = at)
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

sp_tests::on_both_backends!(the_log_exports_as_json_lines_whole_and_filtered);
