//! Check runs through a GitHub App, against a fake GitHub that checks the
//! App's JWT, mints installation tokens and takes check runs only with them
//! (at most 50 annotations per request): one check run per run, its states
//! in order and each once, the failures annotated, the summary saying what
//! the change did, and "Re-run" on GitHub queuing one new run.

use serde_json::{Value, json};
use sp_tests::fake_github::FakeGithub;
use sp_tests::github::{self, REPO, sha};
use sp_tests::{
    Backend, TestPlatform, as_github_app, demo_result, eventually, generated_catalogue,
};

const TESTS: usize = 60;

/// Each of the generated catalogue's tests, passing (`equal`) or producing
/// `upper`.
fn results(upper: &str) -> Vec<Value> {
    (0..TESTS)
        .map(|i| demo_result(&format!("t{i:05}"), 0, upper))
        .collect()
}

/// The platform's check runs on `commit`.
fn checks_on(fake: &FakeGithub, commit: &str) -> Vec<Value> {
    fake.check_runs(REPO)
        .into_iter()
        .filter(|c| c["head_sha"] == commit)
        .collect()
}

async fn check_runs_report_each_state_once_and_rerequests_queue_a_run(backend: Backend) {
    let fake = FakeGithub::start().await;
    fake.install_test_app();
    let dir = tempfile::tempdir().expect("dir");
    let catalogue = generated_catalogue(dir.path(), TESTS);
    let url = fake.url.clone();
    let p = TestPlatform::start_with(backend, move |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(catalogue);
        s.local_vm_command = "sleep 600".into();
        s.public_url = Some("https://ci.example.org".into());
        as_github_app(s, &url)
    })
    .await;

    // The base passes; the pull request's build breaks every test.
    let base = p.push("base", '2').await;
    p.finish_run(&base, &results("equal")).await;
    let head = p
        .pull_request("k-open", "opened", 9, ('3', '2'), "2026-11-30T10:00:00Z")
        .await;
    p.finish_run(&head, &results(&"e".repeat(64))).await;

    // Completed, with every failure annotated (the annotations after the
    // first 50 come in a second request).
    let check = eventually("the head's completed check run", || async {
        let found = checks_on(&fake, &sha('3'));
        found
            .iter()
            .any(|c| c["status"] == "completed" && c["output"]["annotations_count"] == TESTS)
            .then_some(found)
    })
    .await;
    assert_eq!(check.len(), 1, "one check run per run: {check:?}");
    let check = &check[0];
    assert_eq!(check["name"], "CI - linux");
    assert_eq!(check["conclusion"], "failure");
    assert_eq!(check["external_id"], json!(head));
    assert_eq!(
        check["details_url"],
        json!(format!("https://ci.example.org/runs/{head}"))
    );
    assert_eq!(check["output"]["title"], "60 of 60 failed, 60 broken here");
    let summary = check["output"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("- Broken here: [`t00000`]"), "{summary}");
    assert!(summary.contains("and 40 more"), "{summary}");
    // In requests of at most 50 annotations each.
    let requests = fake.check_run_requests();
    assert!(
        requests.iter().all(|r| r["output"]["annotations"]
            .as_array()
            .is_none_or(|a| a.len() <= 50)),
        "no request carries more than 50 annotations"
    );
    // Its states were sent in order, each once.
    let states: Vec<String> = requests
        .iter()
        .filter(|r| r.get("status").is_some() && (r["external_id"] == json!(head)))
        .map(|r| r["status"].as_str().unwrap_or("").to_string())
        .collect();
    let order = ["queued", "in_progress", "completed"];
    let mut last = None;
    for s in &states {
        let at = order.iter().position(|o| o == s).expect("a known status");
        assert!(
            last.is_none_or(|l| at > l),
            "states out of order or repeated: {states:?}"
        );
        last = Some(at);
    }
    assert_eq!(
        states.last().map(String::as_str),
        Some("completed"),
        "{states:?}"
    );
    let base_check = checks_on(&fake, &sha('2'));
    assert_eq!(base_check.len(), 1);
    assert_eq!(base_check[0]["conclusion"], "success");
    // The commit statuses API is not used with check runs.
    assert!(fake.statuses().is_empty());

    // "Re-run" on GitHub queues one new run of that commit and platform,
    // recorded as asked by the GitHub user; a redelivery queues nothing.
    let rerequest = github::check_run("rerequested", &head, &sha('3'), "maintainer");
    let (status, body) = p.deliver("check_run", "k-rerun", &rerequest).await;
    assert_eq!(status, 202, "{body}");
    let runs = body["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "{body}");
    let rerun = runs[0].as_str().expect("a run id").to_string();
    assert_ne!(rerun, head);
    let (status, again) = p.deliver("check_run", "k-rerun", &rerequest).await;
    assert_eq!(status, 200, "{again}");
    p.caught_up().await;
    let listed = p
        .query(
            "{ runs(filter: { commitPrefix: \"3333\" }) { edges { node { id trigger } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["runs"]["edges"].as_array().map(Vec::len),
        Some(2),
        "the pull request's run and one rerun: {listed}"
    );
    let queued = p.until(&rerun, "Queued").await;
    let data = &queued[0].1;
    assert_eq!(data["commit_sha"], sha('3'));
    assert_eq!(data["trigger"]["requested_by"], "github:maintainer");
    // A head superseded after its check run was made completes it as
    // cancelled, rather than leaving it queued on GitHub for ever.
    p.pull_request("k-10", "opened", 10, ('5', '2'), "2026-11-30T12:00:00Z")
        .await;
    eventually("the first head's check run", || async {
        (!checks_on(&fake, &sha('5')).is_empty()).then_some(())
    })
    .await;
    p.pull_request(
        "k-10-sync",
        "synchronize",
        10,
        ('6', '2'),
        "2026-11-30T12:05:00Z",
    )
    .await;
    let old = eventually("the superseded head's check run completed", || async {
        checks_on(&fake, &sha('5'))
            .into_iter()
            .find(|c| c["status"] == "completed")
    })
    .await;
    assert_eq!(old["conclusion"], "cancelled", "{old}");
    assert_eq!(old["output"]["title"], "Superseded by a newer run");

    // Someone else's check run (or a made-up id) queues nothing.
    let foreign = github::check_run("rerequested", "not-ours", &sha('3'), "maintainer");
    let (status, body) = p.deliver("check_run", "k-foreign", &foreign).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["runs"].is_null(), "{body}");
}

sp_tests::on_both_backends!(check_runs_report_each_state_once_and_rerequests_queue_a_run);
