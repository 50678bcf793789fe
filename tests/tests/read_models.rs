//! The read models: live updates over a subscription, rebuilds that equal the
//! live models, and an event a model cannot apply, which stops it visibly.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sp_eventstore::{ExpectedVersion, Metadata, NewEvent};
use sp_projections::queries::{self, RunFilter};
use sp_tests::github::{self, sha};
use sp_tests::{Backend, TestPlatform, eventually, graphql_socket, socket_message};

async fn subscribers_see_runs_change(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let mut socket = graphql_socket(&p.base, json!({})).await;
    socket
        .send(socket_message(json!({
            "id": "1",
            "type": "subscribe",
            "payload": { "query": "subscription { runChanged(filter: { platform: \"windows\" }) { id status platform commitSha } }" }
        })))
        .await
        .expect("subscribe");
    // The subscription is live once the server has polled it; until a change
    // arrives, keep pushing new commits (each one queues a linux run, then a
    // windows one: without the filter, the linux run would arrive first).
    let mut pushed = Vec::new();
    let message = loop {
        let after = format!("{:040x}", pushed.len() + 7);
        let (status, body) = p
            .deliver(
                "push",
                &format!("d-sub-{}", pushed.len()),
                &github::push("master", &sha('1'), &after, "x"),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        pushed.push(after);
        match tokio::time::timeout(std::time::Duration::from_millis(500), socket.next()).await {
            Ok(message) => break message.expect("message").expect("frame"),
            Err(_) => assert!(pushed.len() < 20, "no change arrived on the subscription"),
        }
    };
    let payload: Value = serde_json::from_str(&message.to_string()).expect("json");
    assert_eq!(payload["type"], "next", "{payload}");
    let run = &payload["payload"]["data"]["runChanged"];
    assert_eq!(
        run["platform"], "windows",
        "the filter keeps linux out: {payload}"
    );
    assert_eq!(run["status"], "QUEUED");
    assert!(
        pushed.iter().any(|c| run["commitSha"] == c.as_str()),
        "{payload}"
    );

    // One run only: other runs' changes do not arrive on it.
    let target = p.push("d-sub-target", 'e').await;
    socket
        .send(socket_message(json!({
            "id": "2",
            "type": "subscribe",
            "payload": {
                "query": "subscription($id: ID!) { runChanged(runId: $id) { id status } }",
                "variables": { "id": target }
            }
        })))
        .await
        .expect("subscribe");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    p.push("d-sub-other", 'f').await;
    let operator = p.token("ops", &["operate"]).await;
    let cancelled = p
        .graphql(
            "mutation($id: ID!) { cancelRun(id: $id, reason: \"watch it\") }",
            json!({ "id": target }),
            Some(&operator),
        )
        .await;
    assert_eq!(cancelled["data"]["cancelRun"], true, "{cancelled}");
    // It may first show the run as queued (the model applying the push late);
    // whatever arrives on it is that run, until the cancellation.
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("the cancellation arrives")
            .expect("message")
            .expect("frame");
        let payload: Value = serde_json::from_str(&message.to_string()).expect("json");
        if payload["id"] != "2" {
            continue;
        }
        let seen = &payload["payload"]["data"]["runChanged"];
        assert_eq!(seen["id"], target.as_str(), "only that run: {payload}");
        if seen["status"] == "CANCELLED" {
            break;
        }
    }
}

/// Every read model, read through the same queries the API uses.
async fn snapshot(p: &TestPlatform) -> Value {
    let pool = &p.db.database.pool;
    let (runs, _) = queries::list_runs(pool, &RunFilter::default(), 10_000, None)
        .await
        .expect("runs");
    let mut audit = Vec::new();
    for run in &runs {
        audit.extend(
            queries::audit_trail(pool, &run.run_id.to_string())
                .await
                .expect("audit"),
        );
    }
    let mut waiting = Vec::new();
    let mut platforms: Vec<&str> = runs.iter().map(|r| r.platform.as_str()).collect();
    platforms.sort_unstable();
    platforms.dedup();
    for platform in platforms {
        let (page, _) = queries::waiting(pool, platform, None, 10_000)
            .await
            .expect("waiting");
        waiting.extend(page.into_iter().map(|(entry, _)| entry));
    }
    json!({
        "runs": serde_json::to_value(&runs).expect("json"),
        "running": serde_json::to_value(queries::running(pool, None).await.expect("running")).expect("json"),
        "waiting": serde_json::to_value(&waiting).expect("json"),
        "platforms": serde_json::to_value(queries::platform_states(pool).await.expect("platforms")).expect("json"),
        "audit": serde_json::to_value(&audit).expect("json"),
    })
}

async fn rebuilt_models_equal_the_live_ones(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    // A mixed workload: pushes, a pull request updated and closed, operators'
    // cancel and retry, a paused platform.
    let (status, body) = p
        .deliver(
            "push",
            "w-1",
            &github::push("master", &sha('1'), &sha('2'), "a"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = p
        .deliver(
            "push",
            "w-2",
            &github::push("master", &sha('2'), &sha('3'), "a"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for (i, (c, at)) in [('4', "10:00"), ('5', "10:05"), ('6', "10:07")]
        .iter()
        .enumerate()
    {
        let action = if i == 0 { "opened" } else { "synchronize" };
        let payload =
            github::pull_request(action, 7, &sha(*c), &format!("2026-11-30T{at}:00Z"), "b");
        let (status, body) = p
            .deliver("pull_request", &format!("w-pr-{i}"), &payload)
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, body) = p
        .deliver(
            "pull_request",
            "w-late",
            &github::pull_request("synchronize", 7, &sha('8'), "2026-11-30T10:01:00Z", "b"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = p
        .deliver(
            "pull_request",
            "w-pr2",
            &github::pull_request("opened", 8, &sha('9'), "2026-11-30T11:00:00Z", "c"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = p
        .deliver(
            "pull_request",
            "w-close",
            &github::pull_request("closed", 8, &sha('9'), "2026-11-30T11:10:00Z", "c"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let token = p.token("ops", &["operate"]).await;
    let runs = p
        .graphql(
            "mutation { enqueueRun(repository: \"CCExtractor/ccextractor\", commitSha: \"abababababababababababababababababababab\") }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(runs.get("errors").is_none(), "{runs}");
    let manual = runs["data"]["enqueueRun"][0]
        .as_str()
        .unwrap_or_else(|| panic!("enqueueRun returned no run: {runs}"))
        .to_string();
    let cancelled = p
        .graphql(
            "mutation($id: ID!) { cancelRun(id: $id, reason: \"not needed\") }",
            json!({ "id": manual }),
            Some(&token),
        )
        .await;
    assert!(cancelled.get("errors").is_none(), "{cancelled}");
    assert_eq!(cancelled["data"]["cancelRun"], true, "{cancelled}");
    let retried = p
        .graphql(
            "mutation($id: ID!) { retryRun(id: $id) }",
            json!({ "id": manual }),
            Some(&token),
        )
        .await;
    assert!(retried.get("errors").is_none(), "{retried}");
    let retry = retried["data"]["retryRun"]
        .as_str()
        .unwrap_or_else(|| panic!("retryRun returned no run: {retried}"));
    assert_ne!(retry, manual, "a retry is a new run");
    let paused = p
        .graphql(
            "mutation { pausePlatform(platform: \"linux\", note: \"maintenance\") }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(paused.get("errors").is_none(), "{paused}");
    assert_eq!(paused["data"]["pausePlatform"], true, "{paused}");
    p.caught_up().await;
    let live = snapshot(&p).await;
    assert!(
        live["runs"].as_array().map(Vec::len).unwrap_or(0) >= 10,
        "{live}"
    );
    let live_tables = p.read_models().await;

    p.rebuild_read_models().await;
    let rebuilt = snapshot(&p).await;
    assert_eq!(rebuilt, live, "a rebuilt read model equals the live one");
    let rebuilt_tables = p.read_models().await;
    assert_eq!(
        rebuilt_tables, live_tables,
        "every table of every read model is rebuilt as it was"
    );

    // The live projectors carry on from the rebuilt checkpoint.
    let (status, body) = p
        .deliver(
            "push",
            "w-after",
            &github::push("master", &sha('3'), &sha('c'), "a"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    p.caught_up().await;
    let after = snapshot(&p).await;
    assert_eq!(
        after["runs"].as_array().map(Vec::len),
        live["runs"].as_array().map(|r| r.len() + 2)
    );
}

async fn an_event_a_model_cannot_apply_stops_it_visibly(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let run = sp_domain::RunId::derived("corrupt");
    let bad = NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "Queued".into(),
        schema_version: 2,
        data: json!({ "not": "a Queued event" }),
        metadata: Metadata::new("system:test", uuid::Uuid::new_v4()),
    };
    let appended =
        p.db.store()
            .append(&run.stream(), ExpectedVersion::NoStream, &[bad])
            .await
            .expect("append");
    let failing = eventually("readyz reports the failing event", || async {
        let r = p.http.get(format!("{}/readyz", p.base)).send().await.ok()?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.ok()?;
        let runs = body["checks"]["projection:runs"].clone();
        (status == 503 && runs["ok"] == false).then_some(runs)
    })
    .await;
    assert_eq!(failing["failing_at"], appended.last_position);
    assert!(
        failing["error"].as_str().unwrap_or("").contains("decode"),
        "{failing}"
    );

    // Later events wait behind it: nothing is skipped. The models move
    // together (one fold of each run serves them all), so every one of them
    // says where it is held. (The write side is not affected: `push`
    // asserts the delivery was accepted.)
    let id = p.push("after-corrupt", '2').await;
    // The projector keeps trying (from 100 ms apart); give it a few tries.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let shown = p
        .query(
            "query($id: ID!) { run(id: $id) { id } auditTrail(runId: $id) { type } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        shown["run"],
        Value::Null,
        "the runs model did not move past the bad event"
    );
    assert_eq!(shown["auditTrail"], json!([]), "nor did the audit model");
    let r: Value = p
        .http
        .get(format!("{}/readyz", p.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    for model in ["runs", "queue", "audit", "vms", "statuses", "results"] {
        let check = &r["checks"][format!("projection:{model}")];
        assert_eq!(check["ok"], false, "{model}: {r}");
        assert_eq!(check["failing_at"], appended.last_position, "{model}: {r}");
    }
}

/// Replicas on one PostgreSQL database: one applies the log to the read
/// models (it holds the projections' lease), the other follows it, and the
/// follower's subscribers still see each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_applies_the_others_follow() {
    let p = TestPlatform::start(Backend::Postgres).await;
    let replica = p.replica().await;
    let role = |base: String| {
        let p = &p;
        async move {
            let (_, r) = p.readyz_of(&base).await;
            let roles: Vec<String> = ["runs", "queue", "audit", "vms", "statuses", "results"]
                .iter()
                .filter_map(|m| r["checks"][format!("projection:{m}")]["role"].as_str())
                .map(str::to_string)
                .collect();
            (roles.len() == 6 && roles.iter().all(|r| *r == roles[0])).then(|| roles[0].clone())
        }
    };
    eventually("one replica applies, the other follows", || async {
        let roles = (
            role(p.base.clone()).await?,
            role(replica.base.clone()).await?,
        );
        (roles == ("applying".to_string(), "following".to_string())).then_some(())
    })
    .await;

    let mut socket = graphql_socket(&replica.base, json!({})).await;
    socket
        .send(socket_message(json!({
            "id": "1",
            "type": "subscribe",
            "payload": { "query": "subscription { runChanged { id status } }" }
        })))
        .await
        .expect("subscribe");
    // Pushed to the applying replica, seen on the following one's socket.
    let mut pushed = Vec::new();
    let message = loop {
        let commit = char::from_digit(2 + pushed.len() as u32 % 14, 16).unwrap_or('a');
        let id = p.push(&format!("d-replica-{}", pushed.len()), commit).await;
        pushed.push(id);
        match tokio::time::timeout(std::time::Duration::from_millis(500), socket.next()).await {
            Ok(message) => break message.expect("message").expect("frame"),
            Err(_) => assert!(pushed.len() < 20, "no change arrived on the follower"),
        }
    };
    let payload: Value = serde_json::from_str(&message.to_string()).expect("json");
    assert_eq!(payload["type"], "next", "{payload}");
    let run = &payload["payload"]["data"]["runChanged"];
    assert_eq!(run["status"], "QUEUED", "{payload}");
}

sp_tests::on_both_backends!(
    subscribers_see_runs_change,
    rebuilt_models_equal_the_live_ones,
    an_event_a_model_cannot_apply_stops_it_visibly,
);
