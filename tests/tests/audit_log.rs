//! GraphQL `auditLog`, on both backends: every stream's events with their
//! actors and a line a person can read: a token made, a push's delivery and
//! run, an operator's pause and block, a maintainer's catalogue change;
//! filtered, paged, and refusing a filter that makes no sense.

use serde_json::{Value, json};
use sp_tests::{Backend, TestPlatform};

const LOG: &str = "query($first: Int, $after: String, $filter: AuditLogFilter) {
    auditLog(first: $first, after: $after, filter: $filter) {
        edges { cursor node { position stream streamVersion type summary subject
                              metadata { actor correlationId causationId } data recordedAt } }
        pageInfo { hasNextPage hasPreviousPage endCursor } } }";

/// The entries `filter` selects, as read with `token` (anonymously without).
async fn entries_as(p: &TestPlatform, token: Option<&str>, filter: Value) -> Vec<Value> {
    let response = p
        .graphql(LOG, json!({ "first": 100, "filter": filter }), token)
        .await;
    assert!(response.get("errors").is_none(), "{response}");
    response["data"]["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn entries(p: &TestPlatform, filter: Value) -> Vec<Value> {
    entries_as(p, None, filter).await
}

fn summaries(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["summary"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn every_stream_is_in_the_audit_log(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let operator = p.token("alice", &["read", "operate", "catalogue"]).await;
    let run = p.push("d-audit-1", 'a').await;
    for mutation in [
        "mutation { pausePlatform(platform: \"linux\", note: \"image upgrade\") }",
        "mutation { blockUser(login: \"spammer\", reason: \"spam pull requests\") }",
        "mutation { setTestActive(id: \"nope\", active: false, reason: \"x\") }",
    ] {
        p.graphql(mutation, json!({}), Some(&operator)).await;
    }
    p.caught_up().await;

    // Newest first, every stream; who is blocked and who holds which token
    // only for operators.
    let anyone = entries(&p, json!({})).await;
    let public: Vec<&str> = anyone.iter().filter_map(|e| e["stream"].as_str()).collect();
    assert!(
        !public.contains(&"access") && !public.contains(&"blocked-users"),
        "{public:?}"
    );
    assert!(public.contains(&"platform-linux"), "{public:?}");
    assert_eq!(
        entries(&p, json!({ "stream": "access" })).await,
        Vec::<Value>::new(),
        "not even when asked for"
    );
    let all = entries_as(&p, Some(&operator), json!({})).await;
    let streams: Vec<&str> = all.iter().filter_map(|e| e["stream"].as_str()).collect();
    for expected in [
        "access",
        "blocked-users",
        "platform-linux",
        "delivery-d-audit-1",
    ] {
        assert!(streams.contains(&expected), "{expected} in {streams:?}");
    }
    assert!(streams.contains(&format!("run-{run}").as_str()));
    let positions: Vec<i64> = all.iter().filter_map(|e| e["position"].as_i64()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "newest first: {positions:?}"
    );

    // Who did what, in words.
    let token = entries_as(&p, Some(&operator), json!({ "stream": "access" })).await;
    assert_eq!(
        summaries(&token),
        ["token alice created, scopes read, operate, catalogue"]
    );
    assert_eq!(token[0]["metadata"]["actor"], "user:test-operator");
    assert_eq!(token[0]["subject"], "token:alice");
    assert_eq!(token[0]["type"], "TokenCreated");
    assert_eq!(token[0]["data"]["name"], "alice");

    let by_alice = entries_as(&p, Some(&operator), json!({ "actor": "user:alice" })).await;
    assert_eq!(
        summaries(&by_alice),
        [
            "spammer blocked: spam pull requests",
            "linux paused: image upgrade"
        ],
        "the refused mutation recorded nothing"
    );
    let blocked = entries_as(&p, Some(&operator), json!({ "subject": "github:spammer" })).await;
    assert_eq!(blocked.len(), 1);

    // One request's events: the delivery and the run it queued.
    let delivery = entries(&p, json!({ "streamPrefix": "delivery-" })).await;
    assert_eq!(delivery.len(), 1);
    assert!(
        delivery[0]["summary"].as_str().is_some_and(
            |s| s.starts_with("GitHub push on ") && s.ends_with("2 runs queued, 0 superseded")
        ),
        "{}",
        delivery[0]["summary"]
    );
    let correlation = delivery[0]["metadata"]["correlationId"].clone();
    let caused = entries(&p, json!({ "correlationId": correlation })).await;
    let types: Vec<&str> = caused.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(
        types.contains(&"DeliveryHandled") && types.contains(&"Queued"),
        "{types:?}"
    );
    let queued = caused
        .iter()
        .find(|e| e["type"] == "Queued")
        .expect("Queued");
    assert!(
        queued["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("queued ") && s.contains(" for a push to master")),
        "{queued}"
    );

    // Types, positions and times narrow it; pages follow the cursor.
    let typed = entries_as(
        &p,
        Some(&operator),
        json!({ "types": ["PlatformPaused", "UserBlocked"] }),
    )
    .await;
    assert_eq!(typed.len(), 2);
    let last = positions[0];
    let window = entries_as(
        &p,
        Some(&operator),
        json!({ "fromPosition": last, "toPosition": last }),
    )
    .await;
    assert_eq!(window.len(), 1);
    let none = entries(&p, json!({ "to": "2000-01-01T00:00:00Z" })).await;
    assert_eq!(none, Vec::<Value>::new());
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let response = p
            .graphql(LOG, json!({ "first": 3, "after": after }), Some(&operator))
            .await;
        let page = &response["data"]["auditLog"];
        for edge in page["edges"].as_array().expect("edges") {
            seen.push(edge["node"]["position"].as_i64().expect("position"));
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    assert_eq!(seen, positions, "pages of 3 give the whole log once");

    // A filter that makes no sense is refused, saying why.
    for (filter, says) in [
        (
            json!({ "fromPosition": 5, "toPosition": 2 }),
            "after toPosition",
        ),
        (json!({ "stream": "" }), "stream is empty"),
        (json!({ "actor": "a\u{0}b" }), "NUL"),
    ] {
        let response = p.graphql(LOG, json!({ "filter": filter }), None).await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "{response}"
        );
        assert!(
            response["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{response}"
        );
    }
    let response = p.graphql(LOG, json!({ "after": "yesterday" }), None).await;
    assert_eq!(response["errors"][0]["extensions"]["code"], "INVALID_INPUT");

    // The model rebuilds to the same rows.
    let live = p.read_models().await;
    p.rebuild_read_models().await;
    assert_eq!(p.read_models().await, live);
}

sp_tests::on_both_backends!(every_stream_is_in_the_audit_log);
