//! `GET /metrics`: Prometheus' text format, and values that move with the
//! work (deliveries, reports, the queue, VMs, outside calls, lag, roles).

use serde_json::json;
use sp_tests::{Backend, TestPlatform, eventually, metric as value};

async fn scrape(p: &TestPlatform) -> String {
    let response = p
        .http
        .get(format!("{}/metrics", p.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.expect("the metrics")
}

/// `promtool check metrics` on a scrape, where Debian's `prometheus`
/// package put it (`.ci/run` installs it; skipped where it is missing).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed: the format is not linted here");
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the scrape");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn deliveries_queue_and_refusals_are_counted(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s
    })
    .await;
    let before = scrape(&p).await;
    let queued = r#"sp_queue_runs{platform="linux",status="queued"}"#;
    assert_eq!(value(&before, queued), Some(0.0), "{before}");
    let runs_queued = r#"sp_runs{platform="linux",outcome="queued"}"#;
    assert_eq!(value(&before, runs_queued), Some(0.0), "{before}");
    assert_eq!(value(&before, "sp_managers_leader"), Some(0.0), "{before}");
    assert_eq!(
        value(
            &before,
            r#"sp_vms{platform="linux",provider="local",status="created"}"#
        ),
        Some(0.0),
        "{before}"
    );
    assert!(
        before.contains("# TYPE sp_queue_oldest_wait_seconds gauge"),
        "{before}"
    );

    let run = p.push("metrics-1", 'a').await;
    let (status, _) = p
        .deliver_raw("push", "metrics-2", b"{}".to_vec(), Some("sha256=00"))
        .await;
    assert_eq!(status, 401);
    let wrong = json!({ "client_id": uuid::Uuid::new_v4(), "kind": "finish" });
    let (status, _) = p.report(&run, "not-a-credential", &wrong).await;
    assert_eq!(status, 401);
    p.caught_up().await;

    let after = scrape(&p).await;
    let delivered = |outcome: &str| {
        value(
            &after,
            &format!(r#"sp_webhook_deliveries_total{{outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(delivered("queued"), Some(1.0), "{after}");
    assert_eq!(delivered("refused"), Some(1.0), "{after}");
    assert_eq!(
        value(&after, r#"sp_runner_reports_total{outcome="refused"}"#),
        Some(1.0),
        "{after}"
    );
    assert_eq!(value(&after, queued), Some(1.0), "{after}");
    assert_eq!(value(&after, runs_queued), Some(1.0), "{after}");
    let waited = value(&after, r#"sp_queue_oldest_wait_seconds{platform="linux"}"#);
    assert!(waited.is_some_and(|s| s > 0.0), "{after}");
    assert_eq!(
        value(&after, r#"sp_read_model_lag_events{model="runs"}"#),
        Some(0.0),
        "{after}"
    );
    assert_eq!(
        value(&after, "sp_read_models_applying"),
        Some(1.0),
        "{after}"
    );
    promtool_accepts(&after);
    p.stop().await;
}

async fn a_run_moves_vms_reports_and_outside_calls(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.local_vm_command = "sleep 600".into();
        s
    })
    .await;
    let (run, token) = p.started_run("metrics-run", 'b').await;
    p.caught_up().await;
    let running = scrape(&p).await;
    assert_eq!(
        value(&running, "sp_managers_leader"),
        Some(1.0),
        "{running}"
    );
    assert_eq!(
        value(
            &running,
            r#"sp_vms{platform="linux",provider="local",status="created"}"#
        ),
        Some(1.0),
        "{running}"
    );
    assert_eq!(
        value(
            &running,
            r#"sp_queue_runs{platform="linux",status="running"}"#
        ),
        Some(1.0),
        "{running}"
    );
    assert_eq!(
        value(&running, r#"sp_runs{platform="linux",outcome="running"}"#),
        Some(1.0),
        "{running}"
    );
    assert_eq!(
        value(
            &running,
            r#"sp_outside_calls_total{service="compute",operation="create",outcome="ok"}"#
        ),
        Some(1.0),
        "the VM's creation: {running}"
    );

    let finish = json!({ "client_id": uuid::Uuid::new_v4(), "kind": "finish" });
    let (status, body) = p.report(&run, &token, &finish).await;
    assert_eq!(status, 202, "{body}");
    p.until(&run, "VmDeleted").await;
    let done = eventually("the VM's deletion is counted", || async {
        let text = scrape(&p).await;
        let deleted =
            r#"sp_outside_calls_total{service="compute",operation="delete",outcome="ok"}"#;
        (value(&text, deleted) == Some(1.0)
            && value(&text, r#"sp_queue_runs{platform="linux",status="running"}"#) == Some(0.0))
        .then_some(text)
    })
    .await;
    assert_eq!(
        value(&done, r#"sp_runner_reports_total{outcome="accepted"}"#),
        Some(1.0),
        "{done}"
    );
    assert_eq!(
        value(
            &done,
            r#"sp_vms{platform="linux",provider="local",status="created"}"#
        ),
        Some(0.0),
        "a VM that is gone is counted no more: {done}"
    );
    // The catalogue is empty: the run passes, and is counted once.
    let ended: Vec<(&str, Option<f64>)> = ["running", "pass", "fail", "error"]
        .into_iter()
        .map(|o| {
            let series = format!(r#"sp_runs{{platform="linux",outcome="{o}"}}"#);
            (o, value(&done, &series))
        })
        .collect();
    assert_eq!(
        ended,
        [
            ("running", Some(0.0)),
            ("pass", Some(1.0)),
            ("fail", Some(0.0)),
            ("error", Some(0.0))
        ],
        "{done}"
    );
    assert_eq!(
        value(
            &done,
            r#"sp_outside_call_duration_seconds_count{service="compute",operation="create"}"#
        ),
        Some(1.0),
        "{done}"
    );
    promtool_accepts(&done);
    // No GitHub is configured here, so no call to it is counted.
    assert!(!done.contains(r#"service="github""#), "{done}");
    p.stop().await;
}

/// With anonymous reading off, a scraper needs a token that may read.
async fn metrics_are_read_as_the_api_is(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.anonymous_read = false;
        s
    })
    .await;
    let (status, _) = p.get_text("/metrics").await;
    assert_eq!(status, 401);
    let token = p.token("prometheus", &["read"]).await;
    let response = p
        .http
        .get(format!("{}/metrics", p.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    p.stop().await;
}

sp_tests::on_both_backends!(
    metrics_are_read_as_the_api_is,
    deliveries_queue_and_refusals_are_counted,
    a_run_moves_vms_reports_and_outside_calls,
);
