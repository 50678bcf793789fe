//! People sign in with GitHub (the fake GitHub's OAuth, spoken as GitHub
//! speaks it) and act by their role: each way in that must be refused is,
//! with a reason, and every mutation checks every role.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sp_tests::fake_github::FakeGithub;
use sp_tests::people::{
    Session, come_back, graphql_as, me, set_cookie, sign_in, start_sign_in, with_sign_in,
};
use sp_tests::{Backend, TestPlatform};

const SET_ROLE: &str = "mutation($l: String!, $r: String!) { setRole(login: $l, role: $r) }";

fn code(answer: &Value) -> Option<&str> {
    answer["errors"][0]["extensions"]["code"].as_str()
}

async fn signing_in_and_out_and_what_is_refused(backend: Backend) {
    let github = FakeGithub::start().await;
    let p = TestPlatform::start_with(backend, |s| with_sign_in(s, &github, &["Root"])).await;

    // Signed out: the dashboard can offer to sign in.
    let nobody = me(&p, None).await;
    assert_eq!(nobody["login"], Value::Null, "{nobody}");
    assert_eq!(nobody["signInAvailable"], true, "{nobody}");

    // The whole flow: a session cookie as the issue asks for it.
    github.oauth.sign_in("alice", 101);
    let started = start_sign_in(&p).await;
    let response = come_back(&started.callback, &started.login_cookie).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(sp_tests::people::location(&response), "/runs");
    let (cookie, header) = set_cookie(&response, "sp_session").expect("a session");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Secure"), "plain http: {header}");
    let alice = me(&p, Some(&cookie)).await;
    assert_eq!(
        (alice["login"].as_str(), alice["role"].as_str()),
        (Some("alice"), Some("reader"))
    );
    let alice = Session {
        cookie,
        csrf: alice["csrfToken"].as_str().expect("csrf").to_string(),
    };

    // A replayed code: GitHub spends a code once.
    let again = come_back(&started.callback, &started.login_cookie).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let body: Value = again.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("incorrect or expired"),
        "{body}"
    );
    assert_eq!(
        github.oauth.exchanges(),
        ["access_token", "bad_verification_code"]
    );

    // A forged state: refused before GitHub is asked anything.
    let started = start_sign_in(&p).await;
    let forged = started
        .callback
        .split("&state=")
        .next()
        .map(|c| format!("{c}&state=forged"))
        .expect("a state");
    let response = come_back(&forged, &started.login_cookie).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("does not match"),
        "{body}"
    );
    // And a callback in a browser that started no sign-in.
    let response = come_back(&started.callback, "other=1").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(github.oauth.exchanges().len(), 2, "GitHub was not asked");

    // A mutation with the cookie but without the CSRF token.
    let (status, body) = graphql_as(
        &p,
        &alice.cookie,
        None,
        "{ runs { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("X-CSRF-Token"),
        "{body}"
    );
    let (status, body) = graphql_as(
        &p,
        &alice.cookie,
        Some("not-the-token"),
        "{ runs { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // A role escalation: a reader cannot make herself admin, nor can a
    // maintainer; the settings' admin can make a maintainer.
    let answer = alice
        .graphql(&p, SET_ROLE, json!({ "l": "alice", "r": "admin" }))
        .await;
    assert_eq!(code(&answer), Some("FORBIDDEN"), "{answer}");
    let root = sign_in(&p, &github, "root", 1).await;
    root.set_role(&p, "alice", "maintainer").await;
    assert_eq!(me(&p, Some(&alice.cookie)).await["role"], "maintainer");
    let answer = alice
        .graphql(&p, SET_ROLE, json!({ "l": "alice", "r": "admin" }))
        .await;
    assert_eq!(code(&answer), Some("FORBIDDEN"), "{answer}");
    let answer = root
        .graphql(&p, SET_ROLE, json!({ "l": "Root", "r": "reader" }))
        .await;
    assert_eq!(
        code(&answer),
        Some("CONFLICT"),
        "an admin by the settings: {answer}"
    );
    let answer = root
        .graphql(&p, SET_ROLE, json!({ "l": "alice", "r": "owner" }))
        .await;
    assert_eq!(code(&answer), Some("INVALID_INPUT"), "{answer}");

    // The audit log names who granted what, and the sign-ins.
    let audit = root
        .graphql(
            &p,
            "{ auditLog(filter: {stream: \"access\"}) { nodes { type summary metadata { actor } } } }",
            json!({}),
        )
        .await;
    let nodes = audit["data"]["auditLog"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let granted = nodes
        .iter()
        .find(|n| n["type"] == "RoleGranted")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(granted["metadata"]["actor"], "github:root", "{audit}");
    assert_eq!(granted["summary"], "alice made maintainer", "{audit}");
    assert!(
        nodes
            .iter()
            .any(|n| n["type"] == "SignedIn" && n["metadata"]["actor"] == "github:alice"),
        "{audit}"
    );

    // Signing in again in the same browser gives a new session id, and
    // ends the old one.
    github.oauth.sign_in("alice", 101);
    let started = start_sign_in(&p).await;
    let both = format!("{}; {}", started.login_cookie, alice.cookie);
    let response = come_back(&started.callback, &both).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (cookie, _) = set_cookie(&response, "sp_session").expect("a new session");
    assert_ne!(cookie, alice.cookie);
    assert_eq!(
        me(&p, Some(&alice.cookie)).await["login"],
        Value::Null,
        "the old one ended"
    );
    let renewed = Session {
        csrf: me(&p, Some(&cookie)).await["csrfToken"]
            .as_str()
            .expect("csrf")
            .to_string(),
        cookie,
    };

    // An expired session.
    p.db.behind_the_back("UPDATE sessions SET expires_at = created_at")
        .await;
    let (status, body) = graphql_as(
        &p,
        &renewed.cookie,
        Some(&renewed.csrf),
        "{ runs { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("expired or ended"),
        "{body}"
    );

    // Logging out: the session ends, its cookie goes.
    let root_again = sign_in(&p, &github, "root", 1).await;
    let response = sp_tests::people::browser()
        .post(format!("{}/auth/logout", p.base))
        .header("cookie", &root_again.cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let response = sp_tests::people::browser()
        .post(format!("{}/auth/logout", p.base))
        .header("cookie", &root_again.cookie)
        .header("x-csrf-token", &root_again.csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), StatusCode::OK);
    let (cleared, _) = set_cookie(&response, "sp_session").expect("the cookie cleared");
    assert_eq!(cleared, "sp_session=");
    assert_eq!(me(&p, Some(&root_again.cookie)).await["login"], Value::Null);
    let (status, _) = graphql_as(
        &p,
        &root_again.cookie,
        Some(&root_again.csrf),
        SET_ROLE,
        json!({ "l": "x", "r": "admin" }),
    )
    .await;
    assert_eq!(status, 401);
    p.stop().await;
}

/// Each mutation of the schema, with arguments of the right types: an
/// allowed caller gets past authorization (any answer but UNAUTHENTICATED
/// or FORBIDDEN), a refused one gets FORBIDDEN.
const MUTATIONS: &[(&str, &str)] = &[
    (
        "enqueueRun",
        "mutation { enqueueRun(repository: \"o/r\", commitSha: \"0000000000000000000000000000000000000000\") }",
    ),
    (
        "cancelRun",
        "mutation { cancelRun(id: \"00000000-0000-0000-0000-000000000000\", reason: \"x\") }",
    ),
    (
        "retryRun",
        "mutation { retryRun(id: \"00000000-0000-0000-0000-000000000000\") }",
    ),
    (
        "pausePlatform",
        "mutation { pausePlatform(platform: \"linux\", note: \"x\") }",
    ),
    (
        "resumePlatform",
        "mutation { resumePlatform(platform: \"linux\", note: \"x\") }",
    ),
    (
        "blockUser",
        "mutation { blockUser(login: \"mallory\", reason: \"x\") }",
    ),
    (
        "unblockUser",
        "mutation { unblockUser(login: \"mallory\") }",
    ),
    (
        "addSample",
        "mutation($f: Upload!) { addSample(file: $f) { sha256 } }",
    ),
    (
        "defineTest",
        "mutation { defineTest(test: {id: \"t\", sample: \"s\", command: \"x\"}) }",
    ),
    (
        "setTestActive",
        "mutation { setTestActive(id: \"t\", active: false, reason: \"x\") }",
    ),
    (
        "acceptOutput",
        "mutation { acceptOutput(runId: \"00000000-0000-0000-0000-000000000000\", testId: \"t\", output: \"o\", asBaseline: true, reason: \"x\") }",
    ),
    (
        "importCatalogue",
        "mutation { importCatalogue(text: \"\") { testsDefined } }",
    ),
    (
        "createToken",
        "mutation { createToken(name: \"t1\", scopes: [\"read\"]) { secret } }",
    ),
    ("revokeToken", "mutation { revokeToken(name: \"nobody\") }"),
    (
        "setRole",
        "mutation { setRole(login: \"someone\", role: \"reader\") }",
    ),
    (
        "queueCustomRun",
        "mutation { queueCustomRun(repository: \"o/r\", commitSha: \"0000000000000000000000000000000000000000\", tests: [\"t\"]) }",
    ),
];

/// What each role may call. A contributor may also run again their own
/// custom runs: the table's run is nobody's, so that is refused here (the
/// end-to-end test of custom runs retries one of theirs).
fn allowed(role: &str, mutation: &str) -> bool {
    let admin_only = ["createToken", "revokeToken", "setRole"];
    match role {
        "admin" => true,
        "maintainer" => !admin_only.contains(&mutation),
        "contributor" => mutation == "queueCustomRun",
        _ => false,
    }
}

/// A mutation as `session` (or anonymous); one with an upload goes as a
/// GraphQL multipart request, as the dashboard sends it.
async fn call(p: &TestPlatform, session: Option<&Session>, query: &str) -> Value {
    let mut request = sp_tests::people::browser().post(format!("{}/graphql", p.base));
    request = if query.contains("Upload!") {
        let operations = json!({ "query": query, "variables": { "f": null } });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.f"] }).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(b"sample".to_vec()).file_name("s.ts"),
            );
        request.multipart(form)
    } else {
        request.json(&json!({ "query": query }))
    };
    if let Some(session) = session {
        request = request
            .header("cookie", &session.cookie)
            .header("x-csrf-token", &session.csrf);
    }
    let response = request.send().await.expect("graphql");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

async fn every_mutation_by_every_role(backend: Backend) {
    let github = FakeGithub::start().await;
    let p = TestPlatform::start_with(backend, |s| with_sign_in(s, &github, &["root"])).await;

    // The table covers the schema: a new mutation must say who may call it.
    let schema = p
        .graphql(
            "{ __schema { mutationType { fields { name } } } }",
            json!({}),
            None,
        )
        .await;
    let mut names: Vec<&str> = schema["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutations")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    names.sort_unstable();
    let mut table: Vec<&str> = MUTATIONS.iter().map(|(n, _)| *n).collect();
    table.sort_unstable();
    assert_eq!(names, table, "every mutation is in the table");

    let root = sign_in(&p, &github, "root", 1).await;
    let mut people = vec![("admin", root.clone())];
    for (i, role) in ["reader", "contributor", "maintainer"]
        .into_iter()
        .enumerate()
    {
        let login = format!("{role}-person");
        if role != "reader" {
            root.set_role(&p, &login, role).await;
        }
        people.push((role, sign_in(&p, &github, &login, 10 + i as i64).await));
    }
    let mut wrong = Vec::new();
    for (name, query) in MUTATIONS {
        // Anonymous: a token or a session is needed.
        let answer = call(&p, None, query).await;
        if code(&answer) != Some("UNAUTHENTICATED") {
            wrong.push(format!("anonymous {name}: {answer}"));
        }
        for (role, session) in &people {
            let answer = call(&p, Some(session), query).await;
            let refused = matches!(code(&answer), Some("FORBIDDEN" | "UNAUTHENTICATED"));
            if refused == allowed(role, name) {
                wrong.push(format!("{role} {name}: {answer}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    p.stop().await;
}

sp_tests::on_both_backends!(
    signing_in_and_out_and_what_is_refused,
    every_mutation_by_every_role
);
