//! The process managers on the local provider, over real HTTP, on both
//! backends: VMs start for queued runs, deadlines fire and compensate,
//! superseded runs lose their VM, orphans are deleted, capacity and
//! maintenance are respected.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use sp_api::Settings;
use sp_managers::local::{LocalConfig, LocalProvider};
use sp_managers::provider::{self, CreateVm, VmProvider};
use sp_tests::github::{self, sha};
use sp_tests::{Backend, TestPlatform, eventually};

/// Managers on, one platform, fast deadlines and retries.
fn fast(mut s: Settings) -> Settings {
    s.managers = true;
    s.platforms = vec!["linux".into()];
    s.policy.deadlines.boot = chrono::Duration::seconds(2);
    s.policy.deadlines.heartbeat = chrono::Duration::seconds(2);
    s.policy.retry.base_delay = chrono::Duration::seconds(1);
    s.policy.retry.max_attempts = 2;
    s.local_vm_command = "sleep 60".into();
    s
}

fn provider(p: &TestPlatform) -> LocalProvider {
    LocalProvider::new(LocalConfig {
        state_dir: p.settings.local_vm_dir.clone(),
        command: vec!["true".into()],
        create_delay: Duration::ZERO,
    })
}

async fn listed(p: &TestPlatform) -> Vec<sp_managers::VmInfo> {
    provider(p)
        .list(&BTreeMap::new())
        .await
        .expect("list local VMs")
}

async fn queued_runs_get_a_vm(backend: Backend) {
    let p = TestPlatform::start_with(backend, |s| {
        let mut s = fast(s);
        s.policy.deadlines.boot = chrono::Duration::seconds(600);
        s
    })
    .await;
    let run = p.push("m-1", '2').await;
    let trail = p.until(&run, "VmCreated").await;
    let types: Vec<&str> = trail.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        vec!["Queued", "ArtifactFetched", "VmRequested", "VmCreated"]
    );
    let vm_name = trail[2].1["vm_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let vms = listed(&p).await;
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(vms[0].name, vm_name);
    assert_eq!(vms[0].label(provider::RUN_LABEL), Some(run.as_str()));
    assert_eq!(vms[0].label(provider::ATTEMPT_LABEL), Some("1"));

    // The read models show stage, attempt, VM and the next deadline.
    let r = eventually("the run shows its VM", || async {
        let r = p
            .query(
                "query($id: ID!) { run(id: $id) { status stage attempt vmName deadlineKind deadlineAt startedAt } }",
                json!({ "id": run }),
            )
            .await;
        (r["run"]["stage"] == "booting").then_some(r)
    })
    .await;
    assert_eq!(r["run"]["status"], "RUNNING");
    assert_eq!(r["run"]["attempt"], 1);
    assert_eq!(r["run"]["vmName"], vm_name.as_str());
    assert_eq!(r["run"]["deadlineKind"], "boot");
    assert!(r["run"]["startedAt"].is_string());
    let q = p
        .query(
            "{ queue(platform: \"linux\") { running { runId vmName stage deadlineAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(q["queue"][0]["running"][0]["vmName"], vm_name.as_str());
}

async fn deadlines_fire_compensate_retry_and_fail(backend: Backend) {
    let p = TestPlatform::start_with(backend, fast).await;
    let run = p.push("m-2", '3').await;
    let trail = p.until(&run, "Failed").await;
    let types: Vec<&str> = trail.iter().map(|(t, _)| t.as_str()).collect();
    let count = |kind: &str| types.iter().filter(|t| **t == kind).count();
    assert_eq!(count("VmRequested"), 2, "one VM per attempt: {types:?}");
    assert_eq!(count("TimedOut"), 2, "{types:?}");
    assert_eq!(count("RetryScheduled"), 1, "{types:?}");
    let failed = &trail
        .iter()
        .rev()
        .find(|(t, _)| t == "Failed")
        .expect("failed")
        .1;
    let message = failed["reason"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("gave up after 2 attempt"), "{message}");
    assert!(message.contains("first report"), "{message}");
    assert_eq!(failed["reason"]["stage"], "booting");

    // Every VM it had is deleted: recorded, and gone from the provider.
    let trail = eventually("both VMs are deleted", || async {
        let e = p.run_events(&run).await;
        (e.iter().filter(|(t, _)| t == "VmDeleted").count() == 2).then_some(e)
    })
    .await;
    assert!(trail.iter().any(|(t, _)| t == "VmDeleteRequested"));
    eventually("the provider has no VM left", || async {
        listed(&p).await.is_empty().then_some(())
    })
    .await;
    let q = eventually("the queue is empty", || async {
        let q = p
            .query(
                "{ queue { waiting { nodes { runId } } running { runId } } }",
                json!({}),
            )
            .await;
        let empty = q["queue"][0]["waiting"]["nodes"]
            .as_array()
            .is_some_and(Vec::is_empty)
            && q["queue"][0]["running"]
                .as_array()
                .is_some_and(Vec::is_empty);
        empty.then_some(q)
    })
    .await;
    assert!(q["queue"].is_array());
}

async fn a_superseded_run_loses_its_vm(backend: Backend) {
    let p = TestPlatform::start_with(backend, |s| {
        let mut s = fast(s);
        s.policy.deadlines.boot = chrono::Duration::seconds(600);
        s
    })
    .await;
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-vm-1",
            &github::pull_request("opened", 3, &sha('a'), "2026-11-30T10:00:00Z", "dev"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let old = body["runs"][0]
        .as_str()
        .unwrap_or_else(|| panic!("the pull request queued no run: {body}"))
        .to_string();
    let trail = p.until(&old, "VmCreated").await;
    let old_vm = trail
        .iter()
        .find(|(t, _)| t == "VmCreated")
        .and_then(|(_, d)| d["vm_name"].as_str())
        .expect("VmCreated names its VM")
        .to_string();

    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-vm-2",
            &github::pull_request("synchronize", 3, &sha('b'), "2026-11-30T10:05:00Z", "dev"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let new = body["runs"][0]
        .as_str()
        .unwrap_or_else(|| panic!("the update queued no run: {body}"))
        .to_string();
    let trail = p.until(&old, "VmDeleted").await;
    let types: Vec<&str> = trail.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        &types[4..],
        &["Superseded", "VmDeleteRequested", "VmDeleted"],
        "{types:?}"
    );
    p.until(&new, "VmCreated").await;
    eventually("only the new run's VM remains", || async {
        let vms = listed(&p).await;
        (vms.len() == 1
            && vms[0].name != old_vm
            && vms[0].label(provider::RUN_LABEL) == Some(new.as_str()))
        .then_some(())
    })
    .await;
}

async fn orphans_are_deleted_and_noticed(backend: Backend) {
    let p = TestPlatform::start_with(backend, fast).await;
    let stray = uuid::Uuid::new_v4().to_string();
    // Reconciliation may delete it even before its creation is confirmed:
    // what matters is that it goes, and that the deletion is recorded.
    let _ = provider(&p)
        .create(&CreateVm {
            name: "sp-linux-orphan-a1".into(),
            platform: "linux".into(),
            idempotency_key: "k".into(),
            labels: provider::labels(&stray, 1, "linux"),
            metadata: BTreeMap::new(),
            max_run_duration: Duration::from_secs(60),
        })
        .await;
    eventually("reconciliation deletes the orphan", || async {
        listed(&p).await.is_empty().then_some(())
    })
    .await;
    eventually("the deletion is recorded as a notice", || async {
        let notices =
            p.db.store()
                .read_stream(sp_domain::notices::STREAM, 1)
                .await
                .expect("read notices");
        notices
            .iter()
            .any(|n| {
                let n = n.data.to_value();
                n["kind"] == "orphan_vm_deleted"
                    && n["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("sp-linux-orphan-a1")
            })
            .then_some(())
    })
    .await;
}

/// Wait until the queue model shows `run` waiting for a VM.
async fn awaiting_vm(p: &TestPlatform, run: &str) {
    eventually("the queue shows the run waiting for a VM", || async {
        let q = p
            .query(
                "{ queue(platform: \"linux\") { waiting { nodes { runId stage } } } }",
                json!({}),
            )
            .await;
        q["queue"][0]["waiting"]["nodes"]
            .as_array()
            .is_some_and(|w| {
                w.iter()
                    .any(|e| e["runId"] == run && e["stage"] == "awaiting_vm")
            })
            .then_some(())
    })
    .await;
}

async fn capacity_and_maintenance_hold_runs_back(backend: Backend) {
    let p = TestPlatform::start_with(backend, |s| {
        let mut s = fast(s);
        s.vm_capacity = 1;
        s.policy.deadlines.boot = chrono::Duration::seconds(600);
        s
    })
    .await;
    let first = p.push("c-1", '4').await;
    p.until(&first, "VmCreated").await;
    let second = p.push("c-2", '5').await;
    p.until(&second, "ArtifactFetched").await;
    // The scheduler reads the queue model: once that shows the second run
    // waiting for a VM and every model has caught up, it has had its chance.
    awaiting_vm(&p, &second).await;
    p.caught_up().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !p.run_events(&second)
            .await
            .iter()
            .any(|(t, _)| t == "VmRequested"),
        "a platform at capacity starts no second VM"
    );
    // The queue page's view: the platform's capacity, what runs, what waits.
    let q = eventually("the queue shows one running and one waiting", || async {
        let q = p
            .query(
                "{ queue(platform: \"linux\") { capacity running { runId } waiting { nodes { runId } } waitingCount oldestWaitingSince } }",
                json!({}),
            )
            .await;
        (q["queue"][0]["waiting"]["nodes"][0]["runId"] == second.as_str()).then_some(q)
    })
    .await;
    assert_eq!(q["queue"][0]["capacity"], 1);
    assert_eq!(q["queue"][0]["running"], json!([{ "runId": first }]));
    assert!(q["queue"][0]["oldestWaitingSince"].is_string(), "{q}");
    assert_eq!(q["queue"][0]["waitingCount"], 1);

    let token = p.token("ops", &["operate"]).await;
    let paused = p
        .graphql(
            "mutation { pausePlatform(platform: \"linux\", note: \"maintenance\") }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(paused.get("errors").is_none(), "{paused}");
    assert_eq!(paused["data"]["pausePlatform"], true, "{paused}");
    // The scheduler reads the pause from the read model: free the slot only
    // once that shows it.
    eventually("the queue shows linux paused", || async {
        let q = p
            .query("{ queue(platform: \"linux\") { paused } }", json!({}))
            .await;
        (q["queue"][0]["paused"] == true).then_some(())
    })
    .await;
    let cancelled = p
        .graphql(
            "mutation($id: ID!) { cancelRun(id: $id, reason: \"make room\") }",
            json!({ "id": first }),
            Some(&token),
        )
        .await;
    assert!(cancelled.get("errors").is_none(), "{cancelled}");
    assert_eq!(cancelled["data"]["cancelRun"], true, "{cancelled}");
    p.until(&first, "VmDeleted").await;
    awaiting_vm(&p, &second).await;
    p.caught_up().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !p.run_events(&second)
            .await
            .iter()
            .any(|(t, _)| t == "VmRequested"),
        "a paused platform starts no VM"
    );
    let resumed = p
        .graphql(
            "mutation { resumePlatform(platform: \"linux\", note: \"done\") }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(resumed.get("errors").is_none(), "{resumed}");
    assert_eq!(resumed["data"]["resumePlatform"], true, "{resumed}");
    p.until(&second, "VmCreated").await;
}

async fn a_vanished_vm_is_recorded_and_retried(backend: Backend) {
    let p = TestPlatform::start_with(backend, |s| {
        let mut s = fast(s);
        s.policy.deadlines.boot = chrono::Duration::seconds(600);
        s
    })
    .await;
    let run = p.push("v-1", '6').await;
    let trail = p.until(&run, "VmCreated").await;
    let vm = trail
        .iter()
        .find(|(t, _)| t == "VmCreated")
        .map(|(_, d)| d["vm_name"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    // Deleted behind the platform's back, as a preemption or a person would.
    provider(&p).delete(&vm).await.expect("delete by hand");
    let trail = p.until(&run, "RetryScheduled").await;
    let retry = &trail
        .iter()
        .find(|(t, _)| t == "RetryScheduled")
        .expect("retry")
        .1;
    assert!(
        retry["reason"]
            .as_str()
            .unwrap_or("")
            .contains("disappeared"),
        "{retry}"
    );
    assert!(
        trail
            .iter()
            .any(|(t, d)| t == "VmDeleted" && d["vm_name"] == vm.as_str())
    );
    let trail = eventually("the retry gets its own VM", || async {
        let e = p.run_events(&run).await;
        (e.iter().filter(|(t, _)| t == "VmCreated").count() == 2).then_some(e)
    })
    .await;
    let second = trail
        .iter()
        .filter(|(t, _)| t == "VmCreated")
        .nth(1)
        .map(|(_, d)| d["vm_name"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(second.ends_with("-a2"), "{second}");
}

/// A leader whose lease another instance has taken (its token bumped) may
/// still be deciding, but the store refuses what it decides: the run it would
/// have moved on stays where the intake put it, and /readyz says why.
async fn a_deposed_leader_writes_nothing(backend: Backend) {
    let p = TestPlatform::start_with(backend, fast).await;
    let first = p.push("fence-1", '2').await;
    p.until(&first, "VmCreated").await;
    // What a standby's take-over does to the lease.
    let bump = "UPDATE leases SET token = token + 1";
    match &p.db.database.pool {
        sp_eventstore::Pool::Sqlite { writer, .. } => {
            sqlx::query(bump).execute(writer).await.map(|_| ())
        }
        sp_eventstore::Pool::Postgres(pool) => sqlx::query(bump).execute(pool).await.map(|_| ()),
    }
    .expect("take the lease over");
    let second = p.push("fence-2", '3').await;
    let problem = eventually("/readyz says the managers are fenced out", || async {
        let (_, body) = p.readyz().await;
        let problems = body["checks"]["managers"]["problems"].to_string();
        problems
            .contains("another instance leads")
            .then_some(problems)
    })
    .await;
    assert!(problem.contains("no longer held"), "{problem}");
    let types: Vec<String> = p
        .run_events(&second)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        types,
        vec!["Queued"],
        "nothing the deposed managers decided landed"
    );
}

sp_tests::on_both_backends!(
    a_deposed_leader_writes_nothing,
    queued_runs_get_a_vm,
    deadlines_fire_compensate_retry_and_fail,
    a_superseded_run_loses_its_vm,
    orphans_are_deleted_and_noticed,
    capacity_and_maintenance_hold_runs_back,
    a_vanished_vm_is_recorded_and_retried,
);
