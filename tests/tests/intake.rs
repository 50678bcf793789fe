//! GitHub deliveries over real HTTP, then the GraphQL answers, on both backends.

use serde_json::{Value, json};
use sp_tests::github::{self, REPO, sha};
use sp_tests::{Backend, TestPlatform, eventually};

const RUN_FIELDS: &str = "id repository commitSha platform status outcome stage attempt branch pullRequest \
                          queuedAt supersededBy finalReason trigger deadlineAt deadlineKind";

async fn run(p: &TestPlatform, id: &str) -> Value {
    p.query(
        &format!("query($id: ID!) {{ run(id: $id) {{ {RUN_FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await["run"]
        .clone()
}

/// Wait until the runs model shows `id` with `status`.
async fn run_with_status(p: &TestPlatform, id: &str, status: &str) -> Value {
    eventually(&format!("run {id} is {status}"), || async {
        let r = run(p, id).await;
        (r["status"] == status).then_some(r)
    })
    .await
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn pushes_queue_a_run_per_platform_and_redeliveries_change_nothing(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let (status, body) = p.deliver("ping", "ping-1", &github::ping()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pong")));

    let push = github::push("master", &sha('1'), &sha('2'), "cfsmp3");
    let (status, body) = p.deliver("push", "d-push-1", &push).await;
    assert_eq!(status, 202, "{body}");
    let runs = ids(&body["runs"]);
    assert_eq!(runs.len(), 2, "one run per platform: {body}");

    for id in &runs {
        let r = run_with_status(&p, id, "QUEUED").await;
        assert_eq!(r["repository"], REPO);
        assert_eq!(r["commitSha"], sha('2'));
        assert_eq!(r["branch"], "master");
        assert_eq!(r["trigger"], "push");
        assert_eq!(r["stage"], "awaiting_artifact");
        assert_eq!(r["deadlineKind"], "artifact_wait");
        assert!(
            r["deadlineAt"].is_string(),
            "a queued run has a deadline: {r}"
        );
    }
    let platforms: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for id in &runs {
            v.push(
                run(&p, id).await["platform"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        v.sort();
        v
    };
    assert_eq!(platforms, vec!["linux", "windows"]);

    // The same delivery again: 200, nothing new.
    p.caught_up().await;
    let events = p.event_count().await;
    let (status, body) = p.deliver("push", "d-push-1", &push).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "duplicate");
    assert_eq!(
        p.event_count().await,
        events,
        "a redelivery records nothing"
    );

    // Another delivery of the same commit (GitHub retried with a new id): same runs.
    let (status, body) = p.deliver("push", "d-push-2", &push).await;
    assert_eq!(status, 202);
    assert_eq!(ids(&body["runs"]), runs);

    // The queue model shows both, waiting, with their deadline.
    p.caught_up().await;
    let queue = p
        .query(
            "{ queue { platform paused waitingCount waiting { nodes { runId position stage attempt waitingSince deadlineAt } } running { runId } } }",
            json!({}),
        )
        .await;
    let queues = queue["queue"].as_array().cloned().unwrap_or_default();
    assert_eq!(queues.len(), 2, "{queue}");
    for q in &queues {
        assert_eq!(q["paused"], false);
        assert_eq!(
            q["waiting"]["nodes"].as_array().map(Vec::len),
            Some(1),
            "{q}"
        );
        assert_eq!(q["waitingCount"], 1);
        assert_eq!(q["waiting"]["nodes"][0]["position"], 1);
        assert_eq!(q["waiting"]["nodes"][0]["attempt"], 1);
    }

    // Ignored pushes answer 202 with the reason.
    for (push, reason) in [
        (
            github::push("feature", &sha('1'), &sha('3'), "x"),
            "not tested",
        ),
        (github::push("master", &sha('3'), &sha('0'), "x"), "deleted"),
        (
            github::push("master", &sha('3'), &sha('3'), "x"),
            "before == after",
        ),
    ] {
        let (status, body) = p
            .deliver("push", &uuid::Uuid::new_v4().to_string(), &push)
            .await;
        assert_eq!(status, 202);
        assert_eq!(body["status"], "ignored");
        assert!(
            body["reason"].as_str().unwrap_or("").contains(reason),
            "{body}"
        );
    }
    let (status, body) = p
        .deliver("issues", "d-issues", &json!({"action": "opened"}))
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (202, Some("ignored: issues"))
    );

    let (status, body) = p
        .deliver(
            "workflow_run",
            "d-wf",
            &github::workflow_run("completed", 77, &sha('2'), Some("success")),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("build recorded"))
    );
    let build =
        p.db.store()
            .read_stream(&sp_domain::delivery::build_stream(REPO, &sha('2')), 1)
            .await
            .expect("read");
    assert_eq!(build.len(), 1);
    let build = build[0].data.to_value();
    assert_eq!(build["conclusion"], "success");
    assert_eq!(build["workflow_run_id"], 77);
}

async fn bad_deliveries_are_refused_and_record_nothing(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let push = github::push("master", &sha('1'), &sha('2'), "x").to_string();
    let before = p.event_count().await;

    let wrong = sp_api::github::signature::sign(b"not the secret", push.as_bytes());
    let (status, body) = p
        .deliver_raw("push", "bad-1", push.clone().into_bytes(), Some(&wrong))
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("does not match"),
        "{body}"
    );
    let (status, body) = p
        .deliver_raw("push", "bad-2", push.clone().into_bytes(), None)
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"].as_str().unwrap_or("").contains("missing"),
        "{body}"
    );

    // Signed but malformed: 400 naming the field.
    let mut broken = github::pull_request("opened", 5, &sha('a'), "2026-11-30T10:00:00Z", "x");
    broken["pull_request"]["head"]
        .as_object_mut()
        .map(|h| h.remove("sha"));
    let (status, body) = p.deliver("pull_request", "bad-3", &broken).await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().unwrap_or("");
    assert!(
        error.contains("pull_request.head") && error.contains("sha"),
        "{body}"
    );

    let signed = sp_api::github::signature::sign(sp_tests::SECRET.as_bytes(), b"{not json");
    let (status, _) = p
        .deliver_raw("push", "bad-4", b"{not json".to_vec(), Some(&signed))
        .await;
    assert_eq!(status, 400);
    let (status, _) = p
        .deliver_raw("push", "bad id!", push.clone().into_bytes(), None)
        .await;
    assert_eq!(status, 401, "the signature is checked before anything else");

    assert_eq!(
        p.event_count().await,
        before,
        "refused deliveries record nothing"
    );

    // Without a secret, every delivery is refused.
    let open = TestPlatform::start_with(backend, |mut s| {
        s.github_webhook_secret = None;
        s
    })
    .await;
    let (status, body) = open
        .deliver(
            "push",
            "d-1",
            &github::push("master", &sha('1'), &sha('2'), "x"),
        )
        .await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("SP_GITHUB_WEBHOOK_SECRET"),
        "{body}"
    );
}

async fn pull_request_updates_supersede_and_late_deliveries_do_not(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s
    })
    .await;
    let author = "contributor";
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-1",
            &github::pull_request("opened", 42, &sha('a'), "2026-11-30T10:00:00Z", author),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let first = ids(&body["runs"]);
    assert_eq!(first.len(), 1);
    let first = first[0].clone();

    // A newer commit: a new run, and the old one superseded by it.
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-2",
            &github::pull_request("synchronize", 42, &sha('b'), "2026-11-30T10:05:00Z", author),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let second = ids(&body["runs"])[0].clone();
    assert_ne!(second, first);
    assert_eq!(ids(&body["superseded"]), vec![first.clone()]);
    let old = run_with_status(&p, &first, "SUPERSEDED").await;
    assert_eq!(old["supersededBy"], second.as_str());
    assert_eq!(old["outcome"], "SUPERSEDED");
    let new = run_with_status(&p, &second, "QUEUED").await;
    assert_eq!(new["pullRequest"], 42);
    assert_eq!(new["outcome"], "QUEUED");
    // The list by outcome: the superseded run, not the waiting one.
    let superseded = p
        .query(
            "{ runs(first: 10, filter: { pullRequest: 42, outcome: SUPERSEDED }) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let listed: Vec<&Value> = superseded["runs"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(listed, vec![&json!(first)], "{superseded}");

    // A delivery from before the second one, arriving late: it must not
    // supersede the newer run.
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-late",
            &github::pull_request("synchronize", 42, &sha('c'), "2026-11-30T10:02:00Z", author),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["status"], "ignored");
    assert!(
        body["reason"].as_str().unwrap_or("").contains("stale"),
        "{body}"
    );
    p.caught_up().await;
    assert_eq!(
        run(&p, &second).await["status"],
        "QUEUED",
        "the newer run survives: {}",
        run(&p, &second).await
    );

    // ready_for_review of the same head queues nothing new.
    let (_, body) = p
        .deliver(
            "pull_request",
            "pr-ready",
            &github::pull_request(
                "ready_for_review",
                42,
                &sha('b'),
                "2026-11-30T10:06:00Z",
                author,
            ),
        )
        .await;
    assert_eq!(ids(&body["runs"]), vec![second.clone()]);
    assert!(ids(&body["superseded"]).is_empty());

    // Closing cancels what is not final.
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-close",
            &github::pull_request("closed", 42, &sha('b'), "2026-11-30T10:10:00Z", author),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["status"], "cancelled");
    assert_eq!(ids(&body["runs"]), vec![second.clone()]);
    let cancelled = run_with_status(&p, &second, "CANCELLED").await;
    assert_eq!(cancelled["finalReason"], "pull request closed");

    // The audit trail says who and why, in order.
    p.caught_up().await;
    let trail = p
        .query(
            "query($id: ID!) { auditTrail(runId: $id) { position type data metadata { actor correlationId } recordedAt } }",
            json!({ "id": first }),
        )
        .await;
    let trail = trail["auditTrail"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = trail.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, vec!["Queued", "Superseded"]);
    assert_eq!(trail[0]["metadata"]["actor"], format!("github:{author}"));
    assert_eq!(trail[1]["data"]["by"], second.as_str());
    assert_ne!(
        trail[0]["metadata"]["correlationId"],
        trail[1]["metadata"]["correlationId"]
    );

    // Replaying history: as of its Queued event the first run was queued.
    let queued_at = trail[0]["position"].as_i64().unwrap_or_default();
    let then = p
        .query(
            "query($id: ID!, $p: Int!) { runAsOf(runId: $id, position: $p) { status supersededBy version } }",
            json!({ "id": first, "p": queued_at }),
        )
        .await;
    assert_eq!(then["runAsOf"]["status"], "QUEUED");
    assert_eq!(then["runAsOf"]["supersededBy"], Value::Null);
    assert_eq!(then["runAsOf"]["version"], 1);
    let before = p
        .query(
            "query($id: ID!) { runAsOf(runId: $id, position: 0) { status } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(before["runAsOf"], Value::Null);

    // The listing filters by pull request and pages with cursors.
    let page = p
        .query(
            "{ runs(first: 1, filter: { pullRequest: 42 }) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        page["runs"]["edges"][0]["node"]["id"],
        second.as_str(),
        "newest first"
    );
    assert_eq!(page["runs"]["pageInfo"]["hasNextPage"], true);
    let cursor = page["runs"]["pageInfo"]["endCursor"].clone();
    let next = p
        .query(
            "query($after: String) { runs(first: 5, after: $after, filter: { pullRequest: 42 }) { edges { node { id } } pageInfo { hasNextPage } } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(next["runs"]["edges"][0]["node"]["id"], first.as_str());
    assert_eq!(next["runs"]["pageInfo"]["hasNextPage"], false);

    // And by a prefix of the commit, in any case: that head's runs only.
    let by_commit = p
        .query(
            "query($c: String!) { runs(first: 10, filter: { commitPrefix: $c }) { edges { node { id commitSha } } } }",
            json!({ "c": sha('b')[..7].to_ascii_uppercase() }),
        )
        .await;
    let nodes: Vec<&Value> = by_commit["runs"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["node"])
        .collect();
    assert!(
        nodes.iter().any(|n| n["id"] == second.as_str()),
        "{by_commit}"
    );
    assert!(
        nodes.iter().all(|n| n["commitSha"] == sha('b').as_str()),
        "{by_commit}"
    );
}

async fn operators_need_tokens_and_are_recorded(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let enqueue = "mutation($sha: String!) { enqueueRun(repository: \"CCExtractor/ccextractor\", commitSha: $sha, platforms: [\"linux\"], note: \"bisecting\") }";
    let vars = json!({ "sha": sha('d') });

    let anonymous = p.graphql(enqueue, vars.clone(), None).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{anonymous}"
    );
    let reader = p.token("reader", &["read"]).await;
    let forbidden = p.graphql(enqueue, vars.clone(), Some(&reader)).await;
    assert_eq!(
        forbidden["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{forbidden}"
    );
    let bogus = p
        .http
        .post(format!("{}/graphql", p.base))
        .bearer_auth("sp_not_a_token")
        .json(&json!({ "query": "{ runs { edges { cursor } } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(bogus.status(), 401);

    let operator = p.token("alice", &["operate"]).await;
    let done = p.graphql(enqueue, vars.clone(), Some(&operator)).await;
    let runs = ids(&done["data"]["enqueueRun"]);
    assert_eq!(runs.len(), 1, "{done}");
    let r = run_with_status(&p, &runs[0], "QUEUED").await;
    assert_eq!(r["trigger"], "manual");

    let invalid = p
        .graphql(enqueue, json!({ "sha": "nope" }), Some(&operator))
        .await;
    assert_eq!(
        invalid["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{invalid}"
    );
    let unknown = p
        .graphql(
            "mutation { enqueueRun(repository: \"a/b\", commitSha: \"dddddddddddddddddddddddddddddddddddddddd\", platforms: [\"beos\"]) }",
            json!({}),
            Some(&operator),
        )
        .await;
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown platform"),
        "{unknown}"
    );

    // Cancel, then retry as a new run.
    let cancel = p
        .graphql(
            "mutation($id: ID!) { cancelRun(id: $id, reason: \"wrong commit\") }",
            json!({ "id": runs[0] }),
            Some(&operator),
        )
        .await;
    assert_eq!(cancel["data"]["cancelRun"], true, "{cancel}");
    let again = p
        .graphql(
            "mutation($id: ID!) { cancelRun(id: $id, reason: \"twice\") }",
            json!({ "id": runs[0] }),
            Some(&operator),
        )
        .await;
    assert_eq!(
        again["errors"][0]["extensions"]["code"], "REFUSED",
        "{again}"
    );
    let retried = p
        .graphql(
            "mutation($id: ID!) { retryRun(id: $id) }",
            json!({ "id": runs[0] }),
            Some(&operator),
        )
        .await;
    let new_run = retried["data"]["retryRun"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!new_run.is_empty() && new_run != runs[0], "{retried}");
    run_with_status(&p, &new_run, "QUEUED").await;
    let missing = p
        .graphql(
            "mutation { retryRun(id: \"00000000-0000-4000-8000-000000000000\") }",
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");

    p.caught_up().await;
    let trail = p
        .query(
            "query($id: ID!) { auditTrail(runId: $id) { type metadata { actor } } }",
            json!({ "id": runs[0] }),
        )
        .await;
    let actors: Vec<&str> = trail["auditTrail"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["metadata"]["actor"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(actors, vec!["user:alice", "user:alice"]);

    // Maintenance shows in the queue.
    let paused = p
        .graphql(
            "mutation { pausePlatform(platform: \"windows\", note: \"image upgrade\") }",
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(paused["data"]["pausePlatform"], true, "{paused}");
    let q = eventually("the pause shows in the queue", || async {
        let q = p
            .query(
                "{ queue(platform: \"windows\") { paused maintenanceNote } }",
                json!({}),
            )
            .await;
        (q["queue"][0]["paused"] == true).then_some(q)
    })
    .await;
    assert_eq!(q["queue"][0]["maintenanceNote"], "image upgrade");

    // A blocked author's pull request queues nothing, and says why.
    let blocked = p
        .graphql(
            "mutation { blockUser(login: \"spammer\", reason: \"spam pull requests\") }",
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(blocked["data"]["blockUser"], true, "{blocked}");
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-spam",
            &github::pull_request("opened", 9, &sha('9'), "2026-11-30T10:00:00Z", "spammer"),
        )
        .await;
    assert_eq!(status, 202);
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("blocked: spam pull requests"),
        "{body}"
    );
    let list = p
        .graphql(
            "{ blockedUsers { login reason } }",
            json!({}),
            Some(&operator),
        )
        .await;
    assert_eq!(list["data"]["blockedUsers"][0]["login"], "spammer");
}

async fn bad_queries_are_refused_with_a_code(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let deep = "{ runs { edges { node { id } } pageInfo { hasNextPage } } }";
    assert!(
        p.graphql(deep, json!({}), None)
            .await
            .get("errors")
            .is_none()
    );
    let bad_cursor = p
        .graphql(
            "{ runs(after: \"x\") { edges { cursor } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        bad_cursor["errors"][0]["extensions"]["code"],
        "INVALID_INPUT"
    );
    let too_many = p
        .graphql(
            "{ runs(first: 1000) { edges { cursor } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(too_many["errors"][0]["extensions"]["code"], "INVALID_INPUT");
    let contradiction = p
        .graphql(
            "{ runs(filter: { status: QUEUED, outcome: PASS }) { edges { cursor } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        contradiction["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{contradiction}"
    );
    assert!(
        contradiction["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no run is both queued and pass"),
        "{contradiction}"
    );
    let not_an_id = p
        .graphql("{ run(id: \"42\") { id } }", json!({}), None)
        .await;
    assert_eq!(
        not_an_id["errors"][0]["extensions"]["code"],
        "INVALID_INPUT"
    );
    // A valid query (every field exists) nested 16 fields deep: __schema,
    // types, fields, type, eleven ofType and name; the limit is 15.
    let nested = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(11),
        " }".repeat(11)
    );
    let too_deep = p.graphql(&nested, json!({}), None).await;
    assert!(too_deep.get("errors").is_some(), "{too_deep}");
    let message = too_deep["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        message.contains("nested too deep"),
        "refused for its depth, not another reason: {too_deep}"
    );
}

/// Two deliveries of one new head at once (GitHub sends `opened` and
/// `labeled` together): the loser of the race is answered from the winner's
/// record, so one run is queued and both are answered.
async fn two_deliveries_of_a_new_head_at_once_queue_one_run(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s
    })
    .await;
    for number in 1..=8u64 {
        let head = format!("{number:040x}");
        let payload = github::pull_request("opened", number, &head, "2026-11-30T10:00:00Z", "a");
        let (id_a, id_b) = (format!("race-{number}-a"), format!("race-{number}-b"));
        let (a, b) = tokio::join!(
            p.deliver("pull_request", &id_a, &payload),
            p.deliver("pull_request", &id_b, &payload),
        );
        assert_eq!((a.0, b.0), (202, 202), "both answered: {} / {}", a.1, b.1);
        let (mut first, mut second) = (ids(&a.1["runs"]), ids(&b.1["runs"]));
        first.append(&mut second);
        first.dedup();
        assert_eq!(first.len(), 1, "one run for the head: {} / {}", a.1, b.1);
    }
    p.caught_up().await;
    let runs = p
        .query("{ runs(first: 50) { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(
        runs["runs"]["edges"].as_array().map(Vec::len),
        Some(8),
        "{runs}"
    );
}

sp_tests::on_both_backends!(
    two_deliveries_of_a_new_head_at_once_queue_one_run,
    pushes_queue_a_run_per_platform_and_redeliveries_change_nothing,
    bad_deliveries_are_refused_and_record_nothing,
    pull_request_updates_supersede_and_late_deliveries_do_not,
    operators_need_tokens_and_are_recorded,
    bad_queries_are_refused_with_a_code,
);
