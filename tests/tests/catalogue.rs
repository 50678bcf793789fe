//! The catalogue over GraphQL and HTTP, on both backends: every mutation
//! done, and refused without a token, with a token lacking the catalogue
//! scope, for an unknown sample, test or run, and for a duplicate.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sp_tests::{Backend, TestPlatform, eventually};

const ADD_SAMPLE: &str = "mutation($file: Upload!, $tags: [String!]!) {
    addSample(file: $file, tags: $tags) { sha256 name extension sizeBytes tags addedBy } }";
const DEFINE: &str = "mutation($test: TestInput!) { defineTest(test: $test) }";
const SET_ACTIVE: &str = "mutation($id: String!, $active: Boolean!) {
    setTestActive(id: $id, active: $active, reason: \"flaky on CI\") }";
const IMPORT: &str =
    "mutation($text: String!) { importCatalogue(text: $text) { samplesAdded testsDefined } }";
const ACCEPT: &str = "mutation($run: ID!, $test: String!, $output: String!, $baseline: Boolean!) {
    acceptOutput(runId: $run, testId: $test, output: $output, asBaseline: $baseline,
                 reason: \"the new wording is right\") }";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The error code of a refused operation; fails the test if it succeeded.
fn code(response: &Value) -> String {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {response}"))
        .to_string()
}

fn ok(response: Value) -> Value {
    assert!(
        response.get("errors").is_none(),
        "GraphQL errors: {response}"
    );
    response["data"].clone()
}

/// `addSample` as a GraphQL multipart request (the upload spec).
async fn upload(
    p: &TestPlatform,
    token: Option<&str>,
    name: &str,
    content: &[u8],
    tags: &[&str],
) -> Value {
    let operations = json!({ "query": ADD_SAMPLE, "variables": { "file": null, "tags": tags } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.file"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(content.to_vec()).file_name(name.to_string()),
        );
    let mut request = p.http.post(format!("{}/graphql", p.base)).multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("upload");
    assert_eq!(response.status(), 200, "GraphQL over HTTP answers 200");
    response.json().await.expect("JSON")
}

/// `POST /api/samples`, as the command line does it.
async fn post_sample(
    p: &TestPlatform,
    token: Option<&str>,
    name: &str,
    content: &'static [u8],
) -> (u16, Value) {
    let mut request = p
        .http
        .post(format!("{}/api/samples", p.base))
        .query(&[("name", name), ("tags", "cli")])
        .body(content);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn test_input(sample: &str, expected: &str) -> Value {
    json!({
        "id": "upper-hello",
        "sample": sample,
        "command": "{exe} {sample} {outdir}",
        "expectedExitCode": 0,
        "categories": ["basic"],
        "platforms": ["linux"],
        "description": "capitals",
        "outputs": [{ "name": "upper.txt", "approvedSha256": expected }],
    })
}

async fn catalogue_events(p: &TestPlatform) -> Vec<(String, Value, String)> {
    p.db.store()
        .read_stream("catalogue", 1)
        .await
        .expect("the catalogue stream")
        .into_iter()
        .map(|e| (e.event_type, e.data.to_value(), e.metadata.actor))
        .collect()
}

async fn samples_and_tests_are_added_only_with_the_catalogue_scope(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.max_sample_bytes = 64;
        s
    })
    .await;
    let maintainer = p.token("maintainer", &["catalogue"]).await;
    let operator = p.token("operator", &["operate", "read"]).await;
    let hello: &[u8] = b"hello world\n";

    // Samples over GraphQL: refused without a token and without the scope.
    let r = upload(&p, None, "hello.txt", hello, &[]).await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    let r = upload(&p, Some(&operator), "hello.txt", hello, &[]).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let added = ok(upload(&p, Some(&maintainer), "hello.txt", hello, &["short"]).await);
    assert_eq!(
        added["addSample"],
        json!({
            "sha256": sha256(hello), "name": "hello.txt", "extension": "txt",
            "sizeBytes": hello.len(), "tags": ["short"], "addedBy": "user:maintainer",
        })
    );
    // The same content under another name is a duplicate, named.
    let r = upload(&p, Some(&maintainer), "copy.bin", hello, &[]).await;
    assert_eq!(code(&r), "CONFLICT", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["name"], "hello.txt");
    let stored = p
        .http
        .get(format!("{}/files/samples/{}", p.base, sha256(hello)))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("download");
    assert_eq!(stored.status(), 200);
    assert_eq!(stored.bytes().await.expect("body").as_ref(), hello);

    // The same over plain HTTP, as the command line uploads.
    assert_eq!(post_sample(&p, None, "fox.txt", b"fox\n").await.0, 401);
    assert_eq!(
        post_sample(&p, Some(&operator), "fox.txt", b"fox\n")
            .await
            .0,
        403
    );
    let (status, body) = post_sample(&p, Some(&maintainer), "fox.txt", b"fox\n").await;
    assert_eq!((status, &body["name"]), (201, &json!("fox.txt")), "{body}");
    let (status, body) = post_sample(&p, Some(&maintainer), "again.txt", b"fox\n").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (&body["name"], &body["duplicate"]),
        (&json!("fox.txt"), &json!(true))
    );
    let (status, body) = post_sample(&p, Some(&maintainer), "big.bin", &[b'x'; 65]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(post_sample(&p, Some(&maintainer), "", b"x").await.0, 400);

    let samples = ok(p
        .graphql("{ samples { name addedBy } }", json!({}), Some(&operator))
        .await);
    assert_eq!(
        samples["samples"].as_array().map(Vec::len),
        Some(2),
        "duplicates and refused uploads added nothing: {samples}"
    );
    assert!(
        samples["samples"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|s| s["addedBy"] == "user:maintainer"),
        "each sample says who added it: {samples}"
    );

    // Tests: refused without the scope, for an unknown sample and a bad input kind.
    let expected = sha256(b"HELLO WORLD\n");
    let test = test_input("hello.txt", &expected);
    let r = p.graphql(DEFINE, json!({ "test": test }), None).await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    let r = p
        .graphql(DEFINE, json!({ "test": test }), Some(&operator))
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = p
        .graphql(
            DEFINE,
            json!({ "test": test_input("nowhere.ts", &expected) }),
            Some(&maintainer),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let mut piped = test.clone();
    piped["inputKind"] = json!("pipe");
    let r = p
        .graphql(DEFINE, json!({ "test": piped }), Some(&maintainer))
        .await;
    assert_eq!(code(&r), "INVALID_INPUT", "{r}");
    let mut unhashed = test.clone();
    unhashed["outputs"][0]["approvedSha256"] = json!("not-a-hash");
    let r = p
        .graphql(DEFINE, json!({ "test": unhashed }), Some(&maintainer))
        .await;
    assert_eq!(code(&r), "INVALID_INPUT", "{r}");

    // Defined once; defining the same again changes nothing.
    let d = ok(p
        .graphql(DEFINE, json!({ "test": test }), Some(&maintainer))
        .await);
    assert_eq!(d["defineTest"], true);
    let d = ok(p
        .graphql(DEFINE, json!({ "test": test }), Some(&maintainer))
        .await);
    assert_eq!(d["defineTest"], false);
    let defined = ok(p
        .graphql(
            "{ regressionTest(id: \"upper-hello\") { sample { name } inputKind categories active outputs { approvedSha256 } } }",
            json!({}),
            Some(&operator),
        )
        .await);
    assert_eq!(
        defined["regressionTest"],
        json!({ "sample": { "name": "hello.txt" }, "inputKind": "file", "categories": ["basic"],
                "active": true, "outputs": [{ "approvedSha256": expected }] })
    );

    // Activation: scope, unknown test, then out of new runs.
    let vars = json!({ "id": "upper-hello", "active": false });
    assert_eq!(
        code(&p.graphql(SET_ACTIVE, vars.clone(), None).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&p.graphql(SET_ACTIVE, vars.clone(), Some(&operator)).await),
        "FORBIDDEN"
    );
    let r = p
        .graphql(
            SET_ACTIVE,
            json!({ "id": "no-such-test", "active": false }),
            Some(&maintainer),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    assert_eq!(
        ok(p.graphql(SET_ACTIVE, vars.clone(), Some(&maintainer)).await)["setTestActive"],
        true
    );
    assert_eq!(
        ok(p.graphql(SET_ACTIVE, vars, Some(&maintainer)).await)["setTestActive"],
        false,
        "already inactive"
    );
    let listed = ok(p
        .graphql(
            "{ active: regressionTests { id } all: regressionTests(includeInactive: true) { id active } }",
            json!({}),
            Some(&operator),
        )
        .await);
    assert_eq!(listed["active"], json!([]));
    assert_eq!(
        listed["all"],
        json!([{ "id": "upper-hello", "active": false }])
    );

    // Every change is recorded with who made it.
    let events = catalogue_events(&p).await;
    let kinds: Vec<&str> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "SampleAdded",
            "SampleAdded",
            "TestDefined",
            "TestActivationChanged"
        ]
    );
    assert!(
        events
            .iter()
            .all(|(_, _, actor)| actor == "user:maintainer"),
        "{events:?}"
    );
    assert_eq!(events[3].1["reason"], "flaky on CI");
}

async fn a_catalogue_file_is_imported_and_exported(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.anonymous_read = false;
        s
    })
    .await;
    let maintainer = p.token("maintainer", &["catalogue"]).await;
    let reader = p.token("reader", &["read"]).await;
    let fox: &[u8] = b"the quick brown fox\n";
    ok(upload(&p, Some(&maintainer), "fox.txt", fox, &[]).await);
    let expected = sha256(b"THE QUICK BROWN FOX\n");
    let text = format!(
        "[[samples]]\nname = \"fox.txt\"\nsha256 = \"{fox}\"\n\n\
         [[tests]]\nid = \"upper-fox\"\nsample = \"fox.txt\"\ncommand = \"{{exe}} {{sample}} {{outdir}}\"\n\
         input = \"stdin\"\ncategories = [\"basic\"]\n\
         [[tests.outputs]]\nname = \"upper.txt\"\napproved_sha256 = \"{expected}\"\n",
        fox = sha256(fox)
    );
    let vars = json!({ "text": text });
    assert_eq!(
        code(&p.graphql(IMPORT, vars.clone(), None).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&p.graphql(IMPORT, vars.clone(), Some(&reader)).await),
        "FORBIDDEN"
    );
    let r = p
        .graphql(
            IMPORT,
            json!({ "text": "[[tests]]\nid = 1\n" }),
            Some(&maintainer),
        )
        .await;
    assert_eq!(code(&r), "INVALID_INPUT", "{r}");
    // A sample whose content was never uploaded, and that has no URL.
    let missing = format!(
        "[[samples]]\nname = \"gone.ts\"\nsha256 = \"{}\"\n",
        sha256(b"never uploaded")
    );
    let r = p
        .graphql(IMPORT, json!({ "text": missing }), Some(&maintainer))
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("gone.ts"),
        "{r}"
    );

    // The uploaded sample is known already; the test is new. Importing the
    // same file again changes nothing.
    let summary = ok(p.graphql(IMPORT, vars.clone(), Some(&maintainer)).await);
    assert_eq!(
        summary["importCatalogue"],
        json!({ "samplesAdded": 0, "testsDefined": 1 })
    );
    let summary = ok(p.graphql(IMPORT, vars, Some(&maintainer)).await);
    assert_eq!(
        summary["importCatalogue"],
        json!({ "samplesAdded": 0, "testsDefined": 0 })
    );

    // Export needs the read scope (anonymous reading is off here) and
    // gives back what was imported.
    assert_eq!(
        code(&p.graphql("{ exportCatalogue }", json!({}), None).await),
        "UNAUTHENTICATED"
    );
    let exported = ok(p
        .graphql("{ exportCatalogue }", json!({}), Some(&reader))
        .await)["exportCatalogue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for needle in [
        "id = \"upper-fox\"",
        "input = \"stdin\"",
        expected.as_str(),
        "name = \"fox.txt\"",
    ] {
        assert!(exported.contains(needle), "{needle} in {exported}");
    }
    // The export imports into another platform, given the sample there.
    let other = TestPlatform::start(backend).await;
    let other_maintainer = other.token("maintainer", &["catalogue"]).await;
    ok(upload(&other, Some(&other_maintainer), "fox.txt", fox, &[]).await);
    let summary = ok(other
        .graphql(IMPORT, json!({ "text": exported }), Some(&other_maintainer))
        .await);
    assert_eq!(summary["importCatalogue"]["testsDefined"], 1);
}

async fn report(p: &TestPlatform, run: &str, credential: &str, body: Value) {
    let mut body = body;
    body["client_id"] = json!(uuid::Uuid::new_v4());
    let r = p
        .http
        .post(format!("{}/runner/v1/runs/{run}/reports", p.base))
        .bearer_auth(credential)
        .json(&body)
        .send()
        .await
        .expect("report");
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
}

async fn job_outputs(p: &TestPlatform, run: &str, credential: &str) -> Value {
    let job: Value = p
        .http
        .get(format!("{}/runner/v1/runs/{run}/job", p.base))
        .bearer_auth(credential)
        .send()
        .await
        .expect("job")
        .json()
        .await
        .expect("JSON");
    job["tests"][0]["test"]["outputs"].clone()
}

async fn a_produced_output_is_accepted_without_rewriting_the_verdict(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.local_vm_command = "sleep 600".into();
        s
    })
    .await;
    let maintainer = p.token("maintainer", &["catalogue"]).await;
    let operator = p.token("operator", &["operate", "read"]).await;
    let hello: &[u8] = b"hello world\n";
    ok(upload(&p, Some(&maintainer), "hello.txt", hello, &[]).await);
    let approved = sha256(b"HELLO WORLD\n");
    let mut test = test_input("hello.txt", &approved);
    test["outputs"]
        .as_array_mut()
        .expect("outputs")
        .push(json!({ "name": "log.txt", "approvedSha256": sha256(b"ok\n") }));
    ok(
        p.graphql(DEFINE, json!({ "test": test }), Some(&maintainer))
            .await,
    );

    // The run produces a new upper.txt and the approved log.txt.
    let (run, credential) = p.started_run("accept-1", '2').await;
    let produced = sha256(b"HELLO, WORLD\n");
    report(
        &p,
        &run,
        &credential,
        json!({ "kind": "result", "result": {
            "test_id": "upper-hello", "exit_code": 0, "runtime_ms": 5,
            "outputs": [
                { "name": "upper.txt", "produced": { "kind": "sha256", "sha256": produced } },
                { "name": "log.txt", "produced": { "kind": "equal" } },
            ],
        }}),
    )
    .await;
    report(&p, &run, &credential, json!({ "kind": "finish" })).await;
    let verdict = || async {
        let r = p
            .graphql(
                "query($id: ID!) { run(id: $id) { verdict } results(runId: $id) { passed } }",
                json!({ "id": run }),
                Some(&operator),
            )
            .await;
        r["data"].clone()
    };
    eventually("the run is judged", || async {
        let v = verdict().await;
        (v["run"]["verdict"] == "fail").then_some(())
    })
    .await;

    let vars = |test: &str, output: &str| json!({ "run": run, "test": test, "output": output, "baseline": false });
    assert_eq!(
        code(
            &p.graphql(ACCEPT, vars("upper-hello", "upper.txt"), None)
                .await
        ),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(
            &p.graphql(ACCEPT, vars("upper-hello", "upper.txt"), Some(&operator))
                .await
        ),
        "FORBIDDEN"
    );
    let unknown_run = json!({ "run": uuid::Uuid::new_v4(), "test": "upper-hello",
                              "output": "upper.txt", "baseline": false });
    assert_eq!(
        code(&p.graphql(ACCEPT, unknown_run, Some(&maintainer)).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(
            &p.graphql(
                ACCEPT,
                vars("upper-hello", "nothing.txt"),
                Some(&maintainer)
            )
            .await
        ),
        "NOT_FOUND"
    );
    // What already matched has nothing to accept.
    assert_eq!(
        code(
            &p.graphql(ACCEPT, vars("upper-hello", "log.txt"), Some(&maintainer))
                .await
        ),
        "REFUSED"
    );

    let accepted = ok(p
        .graphql(ACCEPT, vars("upper-hello", "upper.txt"), Some(&maintainer))
        .await);
    assert_eq!(accepted["acceptOutput"], true);
    let again = ok(p
        .graphql(ACCEPT, vars("upper-hello", "upper.txt"), Some(&maintainer))
        .await);
    assert_eq!(
        again["acceptOutput"], false,
        "accepting twice changes nothing"
    );

    let events = catalogue_events(&p).await;
    let (_, data, actor) = events
        .iter()
        .find(|(t, _, _)| t == "OutputAccepted")
        .expect("OutputAccepted");
    assert_eq!(actor, "user:maintainer");
    assert_eq!(data["run_id"], run.as_str());
    assert_eq!(data["sha256"], produced.as_str());
    assert_eq!(data["platform"], "linux");
    assert_eq!(data["reason"], "the new wording is right");
    assert_eq!(data["as_baseline"], false);

    // The test's history, as its page reads it: who accepted what, and why.
    p.caught_up().await;
    let history = ok(p
        .graphql(
            "{ auditLog(filter: {subject: \"test:upper-hello\", types: [\"OutputAccepted\"]}) {
                 edges { node { summary metadata { actor } } } } }",
            json!({}),
            None,
        )
        .await);
    let edges = history["auditLog"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{history}");
    assert_eq!(edges[0]["node"]["metadata"]["actor"], "user:maintainer");
    assert_eq!(
        edges[0]["node"]["summary"],
        format!(
            "upper.txt of test upper-hello on linux (sha256 {}) accepted as a variant from run {run} \
             by user:maintainer: the new wording is right",
            &produced[..12]
        )
    );

    // The old run keeps its verdict; a new run expects the variant. The read
    // models first apply the acceptance, so a rewritten verdict would show.
    p.caught_up().await;
    let v = verdict().await;
    assert_eq!(v["run"]["verdict"], "fail");
    assert_eq!(v["results"], json!([{ "passed": false }]));
    let (next, next_credential) = p.started_run("accept-2", '3').await;
    let outputs = job_outputs(&p, &next, &next_credential).await;
    let upper = outputs
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == "upper.txt")
        .cloned()
        .unwrap_or_default();
    assert_eq!(upper["approved_sha256"], approved.as_str(), "{outputs}");
    assert!(
        upper["variants"]
            .as_array()
            .is_some_and(|v| v.contains(&json!(produced))),
        "{outputs}"
    );
}

sp_tests::on_both_backends!(
    samples_and_tests_are_added_only_with_the_catalogue_scope,
    a_catalogue_file_is_imported_and_exported,
    a_produced_output_is_accepted_without_rewriting_the_verdict,
);
