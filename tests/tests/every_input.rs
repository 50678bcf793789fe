//! Every input gets an answer that is not a 5xx: the inputs a hostile or an
//! ordinary user sent that once broke a stream, a handler or a migration, on
//! both backends. Each test failed before its fix.

use serde_json::{Value, json};
use sp_tests::github::{self, sha};
use sp_tests::{Backend, TestPlatform, demo_dir, signed};

/// A pull request closed and then reopened: its stream stays readable, and
/// every later delivery for it is answered.
async fn a_closed_pull_request_takes_deliveries_again(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let pr =
        |action: &str, head: char, at: &str| github::pull_request(action, 9, &sha(head), at, "dev");
    for (delivery, action, head, at) in [
        ("pr-open", "opened", 'a', "2026-11-30T10:00:00Z"),
        ("pr-close", "closed", 'a', "2026-11-30T10:01:00Z"),
        ("pr-reopen", "reopened", 'a', "2026-11-30T10:02:00Z"),
        ("pr-sync", "synchronize", 'b', "2026-11-30T10:03:00Z"),
        ("pr-close-2", "closed", 'b', "2026-11-30T10:04:00Z"),
    ] {
        let (status, body) = p
            .deliver("pull_request", delivery, &pr(action, head, at))
            .await;
        assert_eq!(status, 202, "{action}: {body}");
    }
    // A redelivery of the reopen, after the stream holds two closes.
    let (status, body) = p
        .deliver(
            "pull_request",
            "pr-reopen",
            &pr("reopened", 'a', "2026-11-30T10:02:00Z"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Repository names GitHub would never send are refused with a reason, and
/// nothing is recorded.
async fn repository_names_that_are_not_owner_name_are_refused(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let mut n = 0;
    for name in ["x", "ö/ä", "owner/na me", "o/r/s", "/r", ""] {
        let with_name = |mut payload: Value| {
            payload["repository"]["full_name"] = json!(name);
            payload
        };
        for (event, payload) in [
            (
                "push",
                with_name(github::push("master", &sha('1'), &sha('2'), "dev")),
            ),
            (
                "pull_request",
                with_name(github::pull_request(
                    "opened",
                    3,
                    &sha('3'),
                    "2026-11-30T10:00:00Z",
                    "dev",
                )),
            ),
            (
                "workflow_run",
                with_name(github::workflow_run(
                    "completed",
                    5,
                    &sha('4'),
                    Some("success"),
                )),
            ),
        ] {
            n += 1;
            let before = p.event_count().await;
            let (status, body) = p.deliver(event, &format!("bad-repo-{n}"), &payload).await;
            assert_eq!(status, 400, "{event} from {name:?}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("repository.full_name"),
                "names the field: {body}"
            );
            assert_eq!(
                p.event_count().await,
                before,
                "a refused delivery records nothing"
            );
        }
    }
}

/// A NUL character: a 400 naming the field at every edge, the same on both
/// backends, never a 503 that asks for the same input again.
async fn nul_characters_are_refused_at_every_edge(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s
    })
    .await;

    // A webhook field the platform keeps.
    let mut push = github::push("master", &sha('1'), &sha('2'), "dev");
    push["ref"] = json!("refs/heads/ma\u{0}ster");
    let before = p.event_count().await;
    let (status, body) = p.deliver("push", "nul-1", &push).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("ref"),
        "{body}"
    );
    // One it does not keep (a commit message) is no reason to refuse.
    let mut push = github::push("master", &sha('1'), &sha('3'), "dev");
    push["commits"][0]["message"] = json!("binary \u{0} junk");
    let (status, body) = p.deliver("push", "nul-2", &push).await;
    assert_eq!(status, 202, "{body}");
    assert!(p.event_count().await > before);

    // A runner's report.
    let (run, token) = p.started_run("nul-run", '4').await;
    let events = p.run_events(&run).await.len();
    let r = p
        .http
        .post(format!("{}/runner/v1/runs/{run}/reports", p.base))
        .bearer_auth(&token)
        .json(
            &json!({ "client_id": uuid::Uuid::new_v4(), "kind": "failure",
                       "message": "disk \u{0} full", "retryable": false }),
        )
        .send()
        .await
        .expect("report");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap_or_default();
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("message contains a NUL"),
        "{body}"
    );
    assert_eq!(p.run_events(&run).await.len(), events, "nothing recorded");

    // An operator's note. (The managers may record run events meanwhile:
    // the platform's own stream is the one a pause would change.)
    let token = p.token("ops", &["operate"]).await;
    let linux =
        sp_domain::platform::stream(&sp_domain::Platform::new("linux").expect("a platform"));
    let paused = || async {
        p.db.store()
            .read_stream(&linux, 1)
            .await
            .expect("read")
            .len()
    };
    let before = paused().await;
    let response = p
        .graphql(
            "mutation($n: String!) { pausePlatform(platform: \"linux\", note: $n) }",
            json!({ "n": "image \u{0} update" }),
            Some(&token),
        )
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{response}"
    );
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("variable n"),
        "{response}"
    );
    assert_eq!(paused().await, before);
}

/// The body of a delivery is one JSON value.
async fn bytes_after_a_deliverys_json_are_refused(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let payload = github::push("master", &sha('1'), &sha('2'), "dev").to_string();
    for tail in [" {}", "x", "\n[1]", "}"] {
        let body = format!("{payload}{tail}");
        let signature = signed(&body);
        let (status, reply) = p
            .deliver_raw("push", "trailing", body.into_bytes(), Some(&signature))
            .await;
        assert_eq!(status, 400, "{tail:?}: {reply}");
    }
    assert_eq!(p.event_count().await, 0);
    // Whitespace after the value is not another value.
    let body = format!("{payload}\n");
    let signature = signed(&body);
    let (status, reply) = p
        .deliver_raw("push", "trailing", body.into_bytes(), Some(&signature))
        .await;
    assert_eq!(status, 202, "{reply}");
}

/// Without anonymous reading the schema is not readable anonymously either;
/// and an expensive field costs what it costs, however it is aliased.
async fn introspection_follows_the_read_setting_and_costs_add_up(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.anonymous_read = false;
        s
    })
    .await;
    let introspect = "{ __schema { queryType { name } } }";
    let anonymous = p.graphql(introspect, json!({}), None).await;
    assert!(anonymous["errors"].is_array(), "{anonymous}");
    assert!(
        anonymous["data"].is_null() || anonymous["data"]["__schema"].is_null(),
        "{anonymous}"
    );
    let token = p.token("reader", &["read"]).await;
    let with_token = p.graphql(introspect, json!({}), Some(&token)).await;
    assert_eq!(
        with_token["data"]["__schema"]["queryType"]["name"], "Query",
        "{with_token}"
    );

    let aliases: String = (0..1000)
        .map(|i| format!("q{i}: queue {{ platform }} "))
        .collect();
    let costly = p
        .graphql(&format!("{{ {aliases} }}"), json!({}), Some(&token))
        .await;
    let message = costly["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("complex"),
        "refused for its cost: {costly}"
    );
    // The dashboard's own queries still fit.
    let page = p
        .graphql(
            "{ runs(first: 50) { edges { node { id status } } } queue { platform } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert!(page.get("errors").is_none(), "{page}");
}

sp_tests::on_both_backends!(
    a_closed_pull_request_takes_deliveries_again,
    repository_names_that_are_not_owner_name_are_refused,
    nul_characters_are_refused_at_every_edge,
    bytes_after_a_deliverys_json_are_refused,
    introspection_follows_the_read_setting_and_costs_add_up,
);
