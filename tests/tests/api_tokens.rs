//! Tokens over GraphQL, on both backends: an admin token creates and
//! revokes tokens, each change on record with the admin as its actor; the
//! new token works until it is revoked; nobody else may do either.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sp_tests::{Backend, TestPlatform, graphql_socket, socket_message};

const CREATE: &str =
    "mutation($n: String!, $s: [String!]!) { createToken(name: $n, scopes: $s) { name secret } }";
const REVOKE: &str = "mutation($n: String!) { revokeToken(name: $n) }";
const LIST: &str = "{ tokens { name scopes createdAt revokedAt } }";
const ENQUEUE: &str = "mutation { enqueueRun(repository: \"o/r\", commitSha: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\") }";

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

async fn an_admin_manages_tokens_over_the_api(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let admin = p.token("root", &["admin"]).await;
    let operator = p.token("alice", &["operate"]).await;

    // Only an admin token may create one.
    let bob = json!({ "n": "bob", "s": ["operate"] });
    assert_eq!(
        code(&p.graphql(CREATE, bob.clone(), None).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&p.graphql(CREATE, bob.clone(), Some(&operator)).await),
        "FORBIDDEN"
    );
    assert_eq!(
        code(&p.graphql(LIST, json!({}), Some(&operator)).await),
        "FORBIDDEN"
    );

    let created = p.graphql(CREATE, bob.clone(), Some(&admin)).await;
    assert!(created.get("errors").is_none(), "{created}");
    let secret = created["data"]["createToken"]["secret"]
        .as_str()
        .expect("a secret")
        .to_string();
    let queued = p.graphql(ENQUEUE, json!({}), Some(&secret)).await;
    assert!(
        queued.get("errors").is_none(),
        "the new token works: {queued}"
    );

    // A name taken, a scope that does not exist, a name that is not one.
    let again = p.graphql(CREATE, bob, Some(&admin)).await;
    assert_eq!(code(&again), "CONFLICT", "{again}");
    let scope = p
        .graphql(CREATE, json!({ "n": "carol", "s": ["root"] }), Some(&admin))
        .await;
    assert_eq!(code(&scope), "INVALID_INPUT", "{scope}");
    assert!(
        scope["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"root\"")
    );
    let name = p
        .graphql(
            CREATE,
            json!({ "n": "no spaces", "s": ["read"] }),
            Some(&admin),
        )
        .await;
    assert_eq!(code(&name), "INVALID_INPUT", "{name}");
    let none = p
        .graphql(CREATE, json!({ "n": "carol", "s": [] }), Some(&admin))
        .await;
    assert_eq!(code(&none), "INVALID_INPUT", "{none}");

    // Revoked, it stops working at once; revoking it again says so.
    let revoked = p.graphql(REVOKE, json!({ "n": "bob" }), Some(&admin)).await;
    assert_eq!(revoked["data"]["revokeToken"], true, "{revoked}");
    let refused = p
        .http
        .post(format!("{}/graphql", p.base))
        .bearer_auth(&secret)
        .json(&json!({ "query": ENQUEUE }))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401, "a revoked token is refused");
    let twice = p.graphql(REVOKE, json!({ "n": "bob" }), Some(&admin)).await;
    assert_eq!(code(&twice), "NOT_FOUND", "{twice}");

    let listed = p.graphql(LIST, json!({}), Some(&admin)).await;
    let tokens = listed["data"]["tokens"].as_array().expect("tokens");
    let bob = tokens
        .iter()
        .find(|t| t["name"] == "bob")
        .expect("bob listed");
    assert_eq!(bob["scopes"], json!(["operate"]));
    assert!(bob["revokedAt"].is_string(), "{bob}");
    assert!(
        listed.to_string().find("sp_").is_none(),
        "no secret is listed"
    );

    // Both changes are on record, done by the admin's token.
    p.caught_up().await;
    let log = p
        .graphql(
            "query($f: AuditLogFilter) { auditLog(first: 10, filter: $f) { edges { node { summary metadata { actor } } } } }",
            json!({ "f": { "stream": "access" } }),
            Some(&admin),
        )
        .await;
    let by_admin: Vec<String> = log["data"]["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["node"]["metadata"]["actor"] == "user:root")
        .map(|e| e["node"]["summary"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        by_admin,
        ["token bob revoked", "token bob created, scopes operate"],
        "{log}"
    );
}

/// What a mutation sent over the platform's GraphQL WebSocket, opened with
/// `token`, answers.
async fn over_a_websocket(p: &TestPlatform, token: &str, query: &str) -> Value {
    let init = json!({ "Authorization": format!("Bearer {token}") });
    let mut socket = graphql_socket(&p.base, init).await;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
    socket
        .send(socket_message(subscribe))
        .await
        .expect("subscribe");
    let answer = socket.next().await.expect("answer").expect("frame");
    serde_json::from_str(&answer.to_string()).expect("json")
}

/// A WebSocket checks its token once, when it opens, and may outlive the
/// token: over it, a token only reads.
async fn a_websocket_reads_only(backend: Backend) {
    let p = TestPlatform::start(backend).await;
    let admin = p.token("root", &["admin", "operate"]).await;
    let answer = over_a_websocket(
        &p,
        &admin,
        "mutation { createToken(name: \"sneaky\", scopes: [\"admin\"]) { secret } }",
    )
    .await;
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );
    let read = over_a_websocket(&p, &admin, "{ samples { sha256 } }").await;
    assert!(read["payload"]["data"]["samples"].is_array(), "{read}");
    let listed = p.graphql(LIST, json!({}), Some(&admin)).await;
    assert!(!listed.to_string().contains("sneaky"), "{listed}");
}

sp_tests::on_both_backends!(an_admin_manages_tokens_over_the_api, a_websocket_reads_only);
