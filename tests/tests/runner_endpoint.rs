//! The runner's endpoint, spoken to directly with an attempt's credential:
//! the job, reports (recorded, resent, refused), logs, on both backends.

use serde_json::{Value, json};
use sp_tests::{Backend, TestPlatform, demo_dir};

async fn report(p: &TestPlatform, run: &str, token: &str, body: Value) -> (u16, Value) {
    p.report(run, token, &body).await
}

async fn event_types(p: &TestPlatform, run: &str) -> Vec<String> {
    p.run_events(run)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

async fn reports_are_authenticated_deduplicated_and_refused_after_the_end(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s.local_vm_command = "sleep 600".into();
        s.max_log_bytes = 1024;
        s
    })
    .await;
    let (run, token) = p.started_run("r-1", '2').await;

    // The job: what the runner needs, with the attempt's own URLs.
    let job: Value = p
        .http
        .get(format!("{}/runner/v1/runs/{run}/job", p.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("job")
        .json()
        .await
        .expect("json");
    assert_eq!(job["attempt"], 1);
    assert_eq!(job["tests"].as_array().map(Vec::len), Some(3));
    assert!(
        job["reports_url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/reports")
    );
    // Tests come in catalogue order (by id); take the hello sample's.
    let hello = job["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["test"]["id"] == "upper-hello")
        .cloned()
        .unwrap_or_default();
    let sample_url = hello["sample_url"].as_str().unwrap_or_default().to_string();
    let sample = p
        .http
        .get(&sample_url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("sample");
    assert_eq!(sample.status(), 200);
    assert_eq!(sample.text().await.expect("body"), "hello world\n");

    // Without a credential, or with another run's: 401, nothing recorded.
    let before = event_types(&p, &run).await.len();
    let progress = json!({ "client_id": uuid::Uuid::new_v4(), "kind": "progress", "stage": "testing", "done": 0, "total": 3 });
    assert_eq!(report(&p, &run, "spr_wrong", progress.clone()).await.0, 401);
    let other = p.runner_credential("someone-else", 1).await;
    assert_eq!(report(&p, &run, &other, progress.clone()).await.0, 401);
    assert_eq!(event_types(&p, &run).await.len(), before);

    // A report lands once, however often it is sent.
    let (status, ack) = report(&p, &run, &token, progress.clone()).await;
    assert_eq!((status, ack["status"].as_str()), (202, Some("recorded")));
    let (status, ack) = report(&p, &run, &token, progress.clone()).await;
    assert_eq!((status, ack["status"].as_str()), (200, Some("duplicate")));
    let types = event_types(&p, &run).await;
    assert_eq!(types.iter().filter(|t| *t == "Progress").count(), 1);

    // A malformed report names what is wrong.
    let (status, body) = report(
        &p,
        &run,
        &token,
        json!({ "client_id": uuid::Uuid::new_v4(), "kind": "result" }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap_or("").contains("result"),
        "{body}"
    );

    // Logs: stored, capped.
    let log = p
        .http
        .put(format!("{}/runner/v1/runs/{run}/logs/runner.log", p.base))
        .bearer_auth(&token)
        .body("started\n")
        .send()
        .await
        .expect("log");
    assert_eq!(log.status(), 201);
    let stored = p.get_text(&format!("/files/logs/{run}/1/runner.log")).await;
    assert_eq!(stored, (200, "started\n".to_string()));
    let big = p
        .http
        .put(format!("{}/runner/v1/runs/{run}/logs/big.log", p.base))
        .bearer_auth(&token)
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("log");
    assert_eq!(big.status(), 413);
    assert_eq!(
        p.get_text(&format!("/files/logs/{run}/1/big.log")).await.0,
        404
    );
    let files = p
        .query(
            "query($id: ID!) { runFiles(runId: $id) { attempt name sizeBytes url } }",
            json!({ "id": run }),
        )
        .await;
    assert_eq!(
        files["runFiles"],
        json!([{ "attempt": 1, "name": "runner.log", "sizeBytes": 8,
                 "url": format!("/files/logs/{run}/1/runner.log") }]),
        "the refused upload left nothing behind"
    );

    // Finish: the run completes (no results: every test fails as not run).
    let finish = json!({ "client_id": uuid::Uuid::new_v4(), "kind": "finish" });
    assert_eq!(report(&p, &run, &token, finish.clone()).await.0, 202);
    // The finish resent (its answer lost) is the same report: acknowledged,
    // not refused, though it ended the run.
    let (status, ack) = report(&p, &run, &token, finish).await;
    assert_eq!((status, ack["status"].as_str()), (200, Some("duplicate")));
    assert!(
        !event_types(&p, &run)
            .await
            .contains(&"ReportRefused".to_string()),
        "a resent finish is not a refused report"
    );
    // After the end, a report is refused with 409 and recorded, not applied.
    let late = json!({ "client_id": uuid::Uuid::new_v4(), "kind": "progress", "stage": "testing", "done": 3, "total": 3 });
    let (status, ack) = report(&p, &run, &token, late).await;
    assert_eq!(status, 409);
    assert_eq!(ack["status"], "refused");
    assert!(
        ack["reason"].as_str().unwrap_or("").contains("completed"),
        "{ack}"
    );
    let types = event_types(&p, &run).await;
    let refused = p
        .run_events(&run)
        .await
        .into_iter()
        .find(|(t, _)| t == "ReportRefused")
        .map(|(_, data)| data["reason"].clone());
    assert_eq!(
        refused,
        Some(json!(
            "a progress report refused: the run is already completed"
        )),
        "the record says what was refused and why"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "Progress").count(),
        1,
        "the refused report was not applied"
    );
}

sp_tests::on_both_backends!(reports_are_authenticated_deduplicated_and_refused_after_the_end);
