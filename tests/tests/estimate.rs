//! A running run's time left: the median of each remaining test's recent
//! runtimes on its platform, summed; tests never run there are counted at
//! the others' median and said apart.

use serde_json::{Value, json};
use sp_tests::{Backend, TestPlatform, demo_dir};

fn result(test: &str, runtime_ms: u64) -> Value {
    json!({ "client_id": uuid::Uuid::new_v4(), "kind": "result", "result": {
        "test_id": test, "exit_code": 0, "runtime_ms": runtime_ms, "outputs": [] } })
}

async fn estimate(p: &TestPlatform, run: &str) -> Value {
    p.caught_up().await;
    p.query(
        "query($id: ID!) { run(id: $id) { estimate { remainingMs known unknown } } }",
        json!({ "id": run }),
    )
    .await["run"]["estimate"]
        .clone()
}

async fn a_running_run_estimates_its_time_left(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s.local_vm_command = "sleep 600".into();
        s
    })
    .await;
    // Two earlier runs: upper-fox took 1 and 3 s, upper-broken 200 and
    // 400 ms; upper-hello never ran to the end.
    for (delivery, commit, fox, broken) in [("e-1", '2', 1000, 200), ("e-2", '3', 3000, 400)] {
        let run = p.push(delivery, commit).await;
        p.finish_run(
            &run,
            &[result("upper-fox", fox), result("upper-broken", broken)],
        )
        .await;
    }
    let run = p.push("e-3", '4').await;
    p.until(&run, "VmCreated").await;
    let first = estimate(&p, &run).await;
    // fox 2000 + broken 300 + hello at their median (1150).
    assert_eq!(
        first,
        json!({ "remainingMs": 3450, "known": 2, "unknown": 1 }),
        "{first}"
    );
    let token = p.runner_credential(&run, 1).await;
    let (status, body) = p.report(&run, &token, &result("upper-fox", 2500)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        estimate(&p, &run).await,
        json!({ "remainingMs": 600, "known": 1, "unknown": 1 })
    );
    // A finished run has nothing left to estimate.
    p.finish_run(&run, &[]).await;
    assert_eq!(estimate(&p, &run).await, Value::Null);
}

sp_tests::on_both_backends!(a_running_run_estimates_its_time_left);
