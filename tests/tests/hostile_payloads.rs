//! Arbitrary mutations of real GitHub payloads thrown at the webhook, and of
//! real runner reports thrown at the report endpoint: never a 5xx, and a 4xx
//! records nothing (a runner report refused as stale records exactly its
//! `ReportRefused`, by design). The read models must still catch up after.
//!
//! `SP_HOSTILE_CASES` sets the number of cases per backend (default 2,000
//! webhook cases and 1,000 report cases on SQLite, a quarter on PostgreSQL).

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use sp_tests::github::{self, sha};
use sp_tests::{Backend, TestPlatform, demo_dir, signed};

/// Something odd to put where a field was.
#[derive(Debug, Clone)]
enum Odd {
    Null,
    Bool(bool),
    Number(i64),
    Float(f64),
    Huge,
    Text(String),
    Array,
    Object,
}

impl Odd {
    fn value(&self) -> Value {
        match self {
            Odd::Null => Value::Null,
            Odd::Bool(b) => json!(b),
            Odd::Number(n) => json!(n),
            Odd::Float(f) => json!(f),
            Odd::Huge => json!("x".repeat(200_000)),
            Odd::Text(s) => json!(s),
            Odd::Array => json!([1, "two", null]),
            Odd::Object => json!({ "unexpected": true }),
        }
    }
}

fn odd() -> impl Strategy<Value = Odd> {
    prop_oneof![
        Just(Odd::Null),
        any::<bool>().prop_map(Odd::Bool),
        prop_oneof![
            any::<i64>(),
            Just(0),
            Just(-1),
            Just(i64::MAX),
            Just(u32::MAX as i64 + 1)
        ]
        .prop_map(Odd::Number),
        prop_oneof![Just(1e300), Just(-0.5), Just(3.25)].prop_map(Odd::Float),
        Just(Odd::Huge),
        prop_oneof![
            any::<String>(),
            Just(String::new()),
            Just("\u{0}".to_string()),
            Just("a\u{0}b".to_string()),
            Just("x".to_string()),
            Just("ö/ä".to_string()),
            Just("o/r/s".to_string()),
            Just("../../etc/passwd".to_string()),
            Just("refs/heads/".to_string()),
            Just("1970-01-01T00:00:00Z".to_string()),
            Just("9999-12-31T23:59:59Z".to_string()),
            Just("🦀".repeat(300)),
            Just(sha('0')),
        ]
        .prop_map(Odd::Text),
        Just(Odd::Array),
        Just(Odd::Object),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove(Index),
    Replace(Index, Odd),
}

/// A step into a JSON value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

/// The path of every node below the root.
fn paths(value: &Value) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    let mut stack = vec![(value, Vec::new())];
    while let Some((v, path)) = stack.pop() {
        let children: Vec<(Step, &Value)> = match v {
            Value::Object(map) => map.iter().map(|(k, c)| (Step::Key(k.clone()), c)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, c)| (Step::At(i), c))
                .collect(),
            _ => vec![],
        };
        for (step, child) in children {
            let mut p: Vec<Step> = path.clone();
            p.push(step);
            out.push(p.clone());
            stack.push((child, p));
        }
    }
    out
}

fn apply(value: &mut Value, mutation: &Mutation) {
    let all = paths(value);
    if all.is_empty() {
        return;
    }
    let (index, replacement) = match mutation {
        Mutation::Remove(i) => (i, None),
        Mutation::Replace(i, odd) => (i, Some(odd.value())),
    };
    let path = &all[index.index(all.len())];
    let (last, parents) = path.split_last().expect("paths are not empty");
    let mut node = &mut *value;
    for step in parents {
        node = match step {
            Step::Key(k) => &mut node[k.as_str()],
            Step::At(i) => &mut node[*i],
        };
    }
    match (last, replacement, node) {
        (Step::Key(k), None, Value::Object(map)) => {
            map.remove(k);
        }
        (Step::At(i), None, Value::Array(items)) => {
            items.remove(*i);
        }
        (Step::Key(k), Some(r), Value::Object(map)) => {
            map.insert(k.clone(), r);
        }
        (Step::At(i), Some(r), Value::Array(items)) => items[*i] = r,
        _ => {}
    }
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            any::<Index>().prop_map(Mutation::Remove),
            (any::<Index>(), odd()).prop_map(|(i, o)| Mutation::Replace(i, o)),
        ],
        0..4,
    )
}

/// The real payloads of every event the intake handles.
fn deliveries() -> impl Strategy<Value = (String, Value)> {
    let actions = prop::sample::select(vec![
        "opened",
        "synchronize",
        "reopened",
        "closed",
        "ready_for_review",
        "edited",
        "labeled",
        "no-such-action",
    ]);
    prop_oneof![
        (0u8..16).prop_map(|n| (
            "push".to_string(),
            github::push("master", &sha('1'), &sha(char::from(b'a' + n % 6)), "dev")
        )),
        (actions, 1u64..5, 0u8..6).prop_map(|(action, number, head)| (
            "pull_request".to_string(),
            github::pull_request(
                action,
                number,
                &sha(char::from(b'a' + head)),
                "2026-11-30T10:00:00Z",
                "dev"
            )
        )),
        prop::sample::select(vec!["completed", "requested", "in_progress"]).prop_map(|a| (
            "workflow_run".to_string(),
            github::workflow_run(a, 77, &sha('c'), Some("success"))
        )),
        Just(("ping".to_string(), github::ping())),
        prop::sample::select(vec![
            "issues",
            "check_run",
            "",
            "Push",
            "pull_request_review"
        ])
        .prop_map(|e| (
            e.to_string(),
            github::push("master", &sha('1'), &sha('2'), "dev")
        )),
    ]
}

/// How the body is sent: as mutated, with bytes after it, or not as JSON.
#[derive(Debug, Clone)]
enum Framing {
    Json,
    Trailing(String),
    Garbage(Vec<u8>),
    BadSignature,
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        8 => Just(Framing::Json),
        1 => "[ x}{\\]]{0,4}".prop_map(Framing::Trailing),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Framing::Garbage),
        1 => Just(Framing::BadSignature),
    ]
}

fn cases(default: u32, backend: Backend) -> u32 {
    let n = std::env::var("SP_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    match backend {
        Backend::Sqlite => n,
        Backend::Postgres => (n / 4).max(1),
    }
}

fn run_cases<S: Strategy>(
    backend: Backend,
    default: u32,
    strategy: S,
    case: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases: cases(default, backend),
        // Each case is a real request on a real database: shrinking a failure
        // is worth a few hundred more, not thousands.
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, case) {
        panic!("{e}");
    }
}

fn runtime() -> Arc<tokio::runtime::Runtime> {
    Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime"),
    )
}

fn webhooks_never_answer_5xx_and_refusals_record_nothing(backend: Backend) {
    let rt = runtime();
    let p = rt.block_on(TestPlatform::start(backend));
    let n = std::cell::Cell::new(0u64);
    run_cases(
        backend,
        2_000,
        (deliveries(), mutations(), framing()),
        |((event, mut payload), mutations, framing)| {
            for m in &mutations {
                apply(&mut payload, m);
            }
            n.set(n.get() + 1);
            let delivery = format!("hostile-{}", n.get());
            let text = payload.to_string();
            let (body, signature) = match &framing {
                Framing::Json => (text.clone().into_bytes(), Some(signed(&text))),
                Framing::Trailing(tail) => {
                    let b = format!("{text}{tail}");
                    let s = signed(&b);
                    (b.into_bytes(), Some(s))
                }
                Framing::Garbage(bytes) => {
                    let s = signed(&String::from_utf8_lossy(bytes));
                    (bytes.clone(), Some(s))
                }
                Framing::BadSignature => (text.clone().into_bytes(), Some(signed("other"))),
            };
            let (status, reply) = rt.block_on(async {
                let before = p.db.store().head_position().await.expect("head");
                let (status, reply) = p
                    .deliver_raw(&event, &delivery, body, signature.as_deref())
                    .await;
                let after = p.db.store().head_position().await.expect("head");
                prop_assert!(status < 500, "{event} answered {status}: {reply}");
                if (400..500).contains(&status) {
                    prop_assert_eq!(
                        before,
                        after,
                        "a {} for {} recorded events: {}",
                        status,
                        event,
                        reply
                    );
                }
                Ok((status, reply))
            })?;
            let _ = (status, reply);
            Ok(())
        },
    );
    // Whatever was accepted, the read models apply it.
    rt.block_on(p.caught_up());
}

/// A report as the runner writes one.
fn reports() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u32..5, 1u32..5).prop_map(|(done, total)| json!({
            "kind": "progress", "stage": "testing", "message": "running", "done": done, "total": total
        })),
        prop::sample::select(vec!["upper-hello", "upper-fox", "upper-broken", "no-such-test"]).prop_map(
            |test| json!({
                "kind": "result",
                "result": { "test_id": test, "exit_code": 0, "runtime_ms": 12, "timed_out": false,
                            "outputs": [{ "name": "upper.txt", "produced": { "kind": "equal" } }] }
            })
        ),
        Just(json!({ "kind": "failure", "message": "disk full", "retryable": true })),
        Just(json!({ "kind": "finish" })),
    ]
}

fn reports_never_answer_5xx_and_refusals_record_nothing(backend: Backend) {
    let rt = runtime();
    let p = rt.block_on(TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s
    }));
    let (run, token) = rt.block_on(p.started_run("hostile-run", '5'));
    let client_ids: Vec<uuid::Uuid> = (0..8).map(|_| uuid::Uuid::new_v4()).collect();
    let url = format!("{}/runner/v1/runs/{run}/reports", p.base);
    run_cases(
        backend,
        1_000,
        (reports(), mutations(), any::<Index>(), framing()),
        |(mut report, mutations, client, framing)| {
            // A few ids, reused: resends are part of the protocol.
            report["client_id"] = json!(client_ids[client.index(client_ids.len())]);
            for m in &mutations {
                apply(&mut report, m);
            }
            let body = match &framing {
                Framing::Trailing(tail) => format!("{report}{tail}").into_bytes(),
                Framing::Garbage(bytes) => bytes.clone(),
                Framing::Json | Framing::BadSignature => report.to_string().into_bytes(),
            };
            rt.block_on(async {
                let ours = |events: Vec<(String, Value, String)>| -> Vec<String> {
                    events
                        .into_iter()
                        .filter(|(_, _, actor)| actor.starts_with("runner:"))
                        .map(|(t, _, _)| t)
                        .collect()
                };
                let before = ours(runner_events(&p, &run).await);
                let response = p
                    .http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("report");
                let status = response.status().as_u16();
                let reply: Value = response.json().await.unwrap_or(Value::Null);
                let after = ours(runner_events(&p, &run).await);
                prop_assert!(status < 500, "a report answered {status}: {reply}");
                let added = &after[before.len()..];
                if status == 409 && reply["status"] == "refused" {
                    prop_assert_eq!(added, &["ReportRefused".to_string()][..], "{}", reply);
                } else if (400..500).contains(&status) {
                    prop_assert!(added.is_empty(), "a {status} recorded {added:?}: {reply}");
                }
                Ok(())
            })
        },
    );
    rt.block_on(p.caught_up());
}

/// A run's events with their actors.
async fn runner_events(p: &TestPlatform, run: &str) -> Vec<(String, Value, String)> {
    p.db.store()
        .read_stream(&format!("run-{run}"), 1)
        .await
        .expect("read the run")
        .into_iter()
        .map(|e| (e.event_type, e.data.to_value(), e.metadata.actor))
        .collect()
}

// Each case set runs its own runtime: plain tests.
sp_tests::on_both_backends! {
    sync: webhooks_never_answer_5xx_and_refusals_record_nothing,
        reports_never_answer_5xx_and_refusals_record_nothing
}
