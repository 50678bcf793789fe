//! What did my change do: a base run, then a pull request whose build breaks
//! one test, fixes another and changes a third's failing output; its run is
//! classified against the base's, on both backends, and a rebuilt model
//! chooses the same references.

use serde_json::{Value, json};
use sp_tests::{
    Backend, TestPlatform, demo_base_results, demo_dir, demo_result as result, github, github::sha,
};

const COMPARISON: &str = "query($id: ID!) { run(id: $id) { outcome comparison {
    reference { kind commit runId run { commitSha } } note broken fixed
    classes { class label count tests } } } }";

async fn comparison(p: &TestPlatform, run: &str) -> Value {
    p.caught_up().await;
    p.query(COMPARISON, json!({ "id": run })).await["run"]["comparison"].clone()
}

async fn a_pull_request_is_compared_with_its_base(backend: Backend) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s.local_vm_command = "sleep 600".into();
        s
    })
    .await;
    // The base: master at 2 (upper-hello passes, upper-fox fails with one
    // output, upper-broken fails: it should exit 2).
    let base = p.push("base", '2').await;
    p.finish_run(&base, &demo_base_results()).await;
    let first = comparison(&p, &base).await;
    assert_eq!(first["reference"], Value::Null, "{first}");
    assert_eq!(
        first["classes"],
        json!([{ "class": "NO_REFERENCE", "label": "no reference", "count": 3,
                 "tests": ["upper-broken", "upper-fox", "upper-hello"] }]),
        "nothing before it: no reference, never good news"
    );
    assert!(
        first["note"]
            .as_str()
            .unwrap_or("")
            .contains("no finished run of master"),
        "{first}"
    );

    // A pull request onto master at 2: its build breaks upper-hello, fixes
    // upper-broken, and changes upper-fox's failing output.
    let head = p
        .pull_request("pr-5", "opened", 5, ('3', '2'), "2026-11-30T10:00:00Z")
        .await;
    p.finish_run(
        &head,
        &[
            result("upper-hello", 0, &"c".repeat(64)),
            result("upper-fox", 0, &"d".repeat(64)),
            result("upper-broken", 2, "equal"),
        ],
    )
    .await;
    let compared = comparison(&p, &head).await;
    assert_eq!(
        compared["reference"],
        json!({ "kind": "ANCESTOR", "commit": sha('2'), "runId": base, "run": { "commitSha": sha('2') } }),
        "{compared}"
    );
    assert_eq!(
        compared["classes"],
        json!([
            { "class": "BROKEN", "label": "broken here", "count": 1, "tests": ["upper-hello"] },
            { "class": "FAILING_DIFFERENTLY", "label": "failing differently", "count": 1, "tests": ["upper-fox"] },
            { "class": "FIXED", "label": "fixed here", "count": 1, "tests": ["upper-broken"] },
        ]),
        "{compared}"
    );
    assert_eq!(
        (compared["broken"].clone(), compared["fixed"].clone()),
        (json!(1), json!(1))
    );

    // The next push to master has no run of its `before` (1), so it is
    // compared with master's latest finished run: the base. Same output as
    // there: failing identically.
    let (status, body) = p
        .deliver(
            "push",
            "next",
            &github::push("master", &sha('1'), &sha('4'), "dev"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let next = body["runs"][0].as_str().expect("a run").to_string();
    p.finish_run(&next, &demo_base_results()).await;
    let pushed = comparison(&p, &next).await;
    assert_eq!(pushed["reference"]["kind"], "BASE", "{pushed}");
    assert_eq!(pushed["reference"]["runId"], json!(base), "{pushed}");
    assert_eq!(
        pushed["classes"],
        json!([
            { "class": "FAILING_IDENTICALLY", "label": "failing identically", "count": 2, "tests": ["upper-broken", "upper-fox"] },
            { "class": "UNCHANGED_PASS", "label": "unchanged pass", "count": 1, "tests": ["upper-hello"] },
        ]),
        "{pushed}"
    );
    // The runs list carries the counts for its badge.
    let list = p
        .query(
            "{ runs(first: 10) { edges { node { id comparison { broken fixed } } } } }",
            json!({}),
        )
        .await;
    let badge = list["runs"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["node"]["id"] == json!(head))
        .map(|e| e["node"]["comparison"].clone());
    assert_eq!(badge, Some(json!({ "broken": 1, "fixed": 1 })), "{list}");

    // Run again by an operator, the pull request's commit is compared with
    // its own previous run: what the rerun changed.
    let token = p.token("ops", &["operate"]).await;
    let retried = p
        .graphql(
            "mutation($id: ID!) { retryRun(id: $id) }",
            json!({ "id": head }),
            Some(&token),
        )
        .await;
    let rerun = retried["data"]["retryRun"]
        .as_str()
        .unwrap_or_else(|| panic!("{retried}"))
        .to_string();
    p.finish_run(
        &rerun,
        &[
            result("upper-hello", 0, "equal"),
            result("upper-fox", 0, &"d".repeat(64)),
            result("upper-broken", 2, "equal"),
        ],
    )
    .await;
    let again = comparison(&p, &rerun).await;
    assert_eq!(again["reference"]["kind"], "SAME_COMMIT", "{again}");
    assert_eq!(again["reference"]["runId"], json!(head), "{again}");
    assert_eq!(
        again["classes"],
        json!([
            { "class": "FIXED", "label": "fixed here", "count": 1, "tests": ["upper-hello"] },
            { "class": "FAILING_IDENTICALLY", "label": "failing identically", "count": 1, "tests": ["upper-fox"] },
            { "class": "UNCHANGED_PASS", "label": "unchanged pass", "count": 1, "tests": ["upper-broken"] },
        ]),
        "{again}"
    );

    // A rebuild chooses the same references and classes (once the managers
    // have nothing more to record).
    p.until(&rerun, "VmDeleted").await;
    p.caught_up().await;
    let live = p.read_models().await;
    p.rebuild_read_models().await;
    assert_eq!(p.read_models().await, live);
    assert_eq!(comparison(&p, &head).await, compared);
}

sp_tests::on_both_backends!(a_pull_request_is_compared_with_its_base);
