//! The whole job, end to end, on both backends: a signed webhook, the
//! artifact, a local VM running the real `sample-runner`, the demo catalogue
//! run for real, the verdict, and the VM deleted.

use std::time::Duration;

use serde_json::Value;
use sp_tests::github::sha;
use sp_tests::{Backend, TestPlatform, demo_dir, demo_runner, eventually, metric};

const RUNNER: &str = env!("CARGO_BIN_EXE_sample-runner");

async fn the_demo_catalogue_runs_to_a_verdict(backend: Backend) {
    let p = TestPlatform::start_with(backend, demo_runner(RUNNER)).await;
    let run = p.push("e2e-1", '2').await;
    let trail = p.until(&run, "Completed").await;
    let completed = &trail
        .iter()
        .find(|(t, _)| t == "Completed")
        .expect("completed")
        .1;
    assert_eq!(completed["verdict"], "fail", "{completed}");
    assert_eq!(completed["counts"]["passed"], 2, "{completed}");
    assert_eq!(completed["counts"]["failed"], 1, "{completed}");
    assert_eq!(completed["counts"]["by_category"]["crashes"]["passed"], 1);
    assert_eq!(completed["counts"]["by_category"]["variants"]["failed"], 1);
    let results: Vec<&Value> = trail
        .iter()
        .filter(|(t, _)| t == "SampleResult")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(results.len(), 3);
    let broken = results
        .iter()
        .find(|r| r["result"]["test_id"] == "upper-broken")
        .expect("the broken sample's result");
    assert_eq!(broken["result"]["exit_code"], 2);

    p.until(&run, "VmDeleted").await;
    let (status, runner_log) = p.get_text(&format!("/files/logs/{run}/1/runner.log")).await;
    assert_eq!(status, 200, "the runner's log was uploaded");
    assert!(runner_log.contains("upper-broken: exit 2"), "{runner_log}");
    let (status, stderr) = p
        .get_text(&format!("/files/logs/{run}/1/upper-broken.stderr"))
        .await;
    assert_eq!(status, 200, "stderr uploaded");
    assert!(stderr.contains("refusing"), "{stderr}");
    // A test that wrote nothing to stderr costs no upload.
    let (status, _) = p
        .get_text(&format!("/files/logs/{run}/1/upper-hello.stderr"))
        .await;
    assert_eq!(status, 404, "an empty stderr is not uploaded");

    // The dashboard model has the verdict.
    let r = eventually("the runs model shows the verdict", || async {
        let r = p
            .query(
                "query($id: ID!) { run(id: $id) { status verdict passed failed samplesDone samplesTotal } }",
                serde_json::json!({ "id": run }),
            )
            .await;
        (r["run"]["status"] == "COMPLETED").then_some(r)
    })
    .await;
    assert_eq!(r["run"]["verdict"], "fail");
    assert_eq!(
        (r["run"]["passed"].as_i64(), r["run"]["failed"].as_i64()),
        (Some(2), Some(1))
    );

    // So has the results model: each test judged, the failure says why.
    let outcomes = eventually("the results model has every test", || async {
        let r = p
            .query(
                "query($id: ID!) { results(runId: $id) { testId passed categories mismatches } }",
                serde_json::json!({ "id": run }),
            )
            .await;
        let outcomes = r["results"].as_array().cloned().unwrap_or_default();
        (outcomes.len() == 3).then_some(outcomes)
    })
    .await;
    let fox = outcomes
        .iter()
        .find(|o| o["testId"] == "upper-fox")
        .expect("the fox test's outcome");
    assert_eq!(fox["passed"], false, "{fox}");
    assert_eq!(fox["categories"], serde_json::json!(["basic", "variants"]));
    assert_eq!(fox["mismatches"][0]["kind"], "output_differs", "{fox}");
    assert_eq!(fox["mismatches"][0]["output"], "upper.txt", "{fox}");
    let passed = outcomes.iter().filter(|o| o["passed"] == true).count();
    assert_eq!(passed, 2, "{outcomes:?}");

    // With the managers on and the run over, every model rebuilt from the log
    // equals the live one: runs, queue, audit, VMs, statuses and results.
    p.caught_up().await;
    let live = p.read_models().await;
    p.rebuild_read_models().await;
    assert_eq!(
        p.read_models().await,
        live,
        "a rebuild gives the live models"
    );
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A catalogue of one slow test (3 s), so a runner can be killed mid-run.
fn slow_catalogue(dir: &std::path::Path) -> std::path::PathBuf {
    let program = dir.join("slow.sh");
    std::fs::write(
        &program,
        "#!/bin/sh\nsleep 3\ntr a-z A-Z < \"$1\" > \"$2/upper.txt\"\n",
    )
    .expect("program");
    std::fs::write(dir.join("sample.txt"), "slow\n").expect("sample");
    let catalogue = dir.join("catalogue.toml");
    std::fs::write(
        &catalogue,
        format!(
            "[[samples]]\nname = \"sample.txt\"\nsha256 = \"{}\"\npath = \"sample.txt\"\n\n\
             [[tests]]\nid = \"slow\"\nsample = \"sample.txt\"\ncommand = \"{{exe}} {{sample}} {{outdir}}\"\n\
             [[tests.outputs]]\nname = \"upper.txt\"\napproved_sha256 = \"{}\"\n",
            sha256(b"slow\n"),
            sha256(b"SLOW\n")
        ),
    )
    .expect("catalogue");
    catalogue
}

async fn a_killed_runner_is_retried_through_the_heartbeat_deadline(backend: Backend) {
    let data = tempfile::tempdir().expect("dir");
    let catalogue = slow_catalogue(data.path());
    let program = data.path().join("slow.sh");
    let p = TestPlatform::start_with(backend, move |s| {
        let mut s = demo_runner(RUNNER)(s);
        s.catalogue = Some(catalogue);
        s.artifact_source = format!("file://{}", program.display());
        s.policy.deadlines.heartbeat = chrono::Duration::seconds(3);
        s.policy.retry.base_delay = chrono::Duration::seconds(1);
        // The first attempt's runner dies a second into its 3-second test (the
        // VM stays up); later attempts run normally.
        s.local_vm_command = format!(
            "if [ \"$SP_ATTEMPT\" = 1 ]; then {RUNNER} & sleep 1; kill -9 $!; sleep 600; else exec {RUNNER}; fi"
        );
        s
    })
    .await;
    let run = p.push("e2e-2", '3').await;
    let trail = p.until(&run, "Completed").await;
    let types: Vec<&str> = trail.iter().map(|(t, _)| t.as_str()).collect();
    let timed_out = &trail
        .iter()
        .find(|(t, _)| t == "TimedOut")
        .expect("a deadline fired")
        .1;
    assert_eq!(timed_out["deadline"]["kind"], "heartbeat", "{types:?}");
    assert!(types.contains(&"RetryScheduled"), "{types:?}");
    let completed = &trail
        .iter()
        .find(|(t, _)| t == "Completed")
        .expect("completed")
        .1;
    assert_eq!(completed["attempt"], 2);
    assert_eq!(completed["verdict"], "pass", "{completed}");
    // Heartbeats kept the second attempt alive through its 3-second test.
    let heartbeats = trail
        .iter()
        .filter(|(t, d)| t == "Progress" && d["attempt"] == 2 && d["stage"] == "testing")
        .count();
    assert!(heartbeats >= 2, "{types:?}");
    p.until(&run, "VmDeleted").await;
    eventually("both VMs are deleted", || async {
        let deleted = p
            .run_events(&run)
            .await
            .iter()
            .filter(|(t, _)| t == "VmDeleted")
            .count();
        (deleted >= 2).then_some(())
    })
    .await;
    // What an operator's dashboard shows of it.
    let (status, scrape) = p.get_text("/metrics").await;
    assert_eq!(status, 200);
    let stage = timed_out["stage"].as_str().unwrap_or_default();
    let fired = format!(r#"sp_deadlines_fired_total{{stage="{stage}"}}"#);
    assert_eq!(metric(&scrape, &fired), Some(1.0), "{scrape}");
    let retried = r#"sp_retries_scheduled_total{cause="timeout"}"#;
    assert_eq!(metric(&scrape, retried), Some(1.0), "{scrape}");
    let fetched =
        r#"sp_outside_calls_total{service="artifacts",operation="download",outcome="ok"}"#;
    assert!(
        metric(&scrape, fetched).is_some_and(|n| n >= 1.0),
        "{scrape}"
    );
}

/// The demo program as the build of commit `sha` of `repository`: an
/// artifact of the fake GitHub's workflow run `id`.
fn build_on_github(
    github: &sp_tests::fake_github::FakeGithub,
    repository: &str,
    sha: &str,
    id: u64,
) {
    let program = std::fs::read(demo_dir().join("upcase.sh")).expect("program");
    github.add_run(repository, sha, id, "completed", Some("success"));
    github.add_artifact(
        id,
        id * 10,
        "upcase-linux",
        sp_tests::fake_github::zip_with("upcase.sh", &program),
        false,
    );
}

/// The demo runner with builds from `github`'s Actions artifacts.
fn github_builds(s: sp_api::config::Settings, api: &str) -> sp_api::config::Settings {
    let mut s = demo_runner(RUNNER)(s);
    s.artifact_source = "github-actions".into();
    s.artifact_names = [("linux".to_string(), "upcase-linux".to_string())].into();
    s.artifact_executables = [("linux".to_string(), "upcase.sh".to_string())].into();
    s.github_token = Some("ghp_test".into());
    s.github_api_url = api.to_string();
    s
}

/// A platform people sign in to at `github` (root is the admin), serving
/// the upstream repository, building from `github`'s artifacts.
async fn fork_platform(
    backend: Backend,
    github: &sp_tests::fake_github::FakeGithub,
    adjust: impl FnOnce(sp_api::config::Settings) -> sp_api::config::Settings,
) -> TestPlatform {
    github.add_repository(sp_tests::github::REPO, None);
    TestPlatform::start_with(backend, |s| {
        let mut s =
            sp_tests::people::with_sign_in(github_builds(s, &github.url), github, &["root"]);
        s.repositories = vec![sp_tests::github::REPO.into()];
        adjust(s)
    })
    .await
}

/// The full job against GitHub: the artifact from the commit's Actions build
/// (a zip), the statuses reported once each through a flaky API.
async fn with_github_artifacts_and_statuses(backend: Backend) {
    let github = sp_tests::fake_github::FakeGithub::start().await;
    build_on_github(&github, sp_tests::github::REPO, &sha('4'), 31);
    github.fail_statuses_for(
        "failure",
        vec![
            sp_tests::fake_github::Failure::Status(502),
            sp_tests::fake_github::Failure::RateLimited {
                retry_after_secs: 1,
            },
        ],
    );
    let api = github.url.clone();
    let p = TestPlatform::start_with(backend, move |s| github_builds(s, &api)).await;
    let run = p.push("e2e-gh", '4').await;
    let trail = p.until(&run, "Completed").await;
    let completed = &trail
        .iter()
        .find(|(t, _)| t == "Completed")
        .expect("completed")
        .1;
    assert_eq!(
        (
            completed["counts"]["passed"].as_u64(),
            completed["counts"]["failed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let fetched = &trail
        .iter()
        .find(|(t, _)| t == "ArtifactFetched")
        .expect("fetched")
        .1;
    assert!(fetched["size_bytes"].as_u64().unwrap_or(0) > 0);

    // pending, then failure: each sent once, whatever GitHub answered first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<String> = github
            .statuses()
            .iter()
            .map(|(_, _, b)| b["state"].as_str().unwrap_or_default().to_string())
            .collect();
        if states.contains(&"failure".to_string()) {
            assert_eq!(
                states,
                vec!["pending", "failure"],
                "each state once, in order"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "statuses so far: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (repo, commit, status) = github.statuses().pop().expect("a status");
    assert_eq!(
        (repo.as_str(), commit),
        ("CCExtractor/ccextractor", sha('4'))
    );
    assert_eq!(status["context"], "CI - linux");
    assert!(
        status["target_url"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/runs/{run}"))
    );
    assert!(
        status["description"]
            .as_str()
            .unwrap_or("")
            .contains("1 of 3"),
        "{status}"
    );
    p.until(&run, "VmDeleted").await;
    // GitHub's answer is recorded just after GitHub has it.
    let trail = eventually("both statuses are recorded", || async {
        let trail = p.run_events(&run).await;
        let reported: Vec<String> = trail
            .iter()
            .filter(|(t, _)| t == "StatusReported")
            .filter_map(|(_, d)| d["state"].as_str().map(String::from))
            .collect();
        (reported.len() >= 2).then_some(trail)
    })
    .await;
    let reported: Vec<&str> = trail
        .iter()
        .filter(|(t, _)| t == "StatusReported")
        .filter_map(|(_, d)| d["state"].as_str())
        .collect();
    assert_eq!(reported, vec!["pending", "failure"]);
    assert!(
        trail
            .iter()
            .any(|(t, d)| t == "StatusReportFailed" && d["class"] == "retryable")
    );
    // Settled: GitHub stored each state once, and was asked four times:
    // pending once, failure after a 502 and a rate limit.
    let stored: Vec<String> = github
        .statuses()
        .iter()
        .map(|(_, _, b)| b["state"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(stored, vec!["pending", "failure"], "nothing sent twice");
    assert_eq!(github.status_attempts(), 1 + 2 + 1, "{stored:?}");
    // The same four, as an operator's metrics count them (the artifact's
    // lookups are GETs; posts are statuses only here).
    let (_, scrape) = p.get_text("/metrics").await;
    let posts = |outcome: &str| {
        metric(
            &scrape,
            &format!(
                r#"sp_outside_calls_total{{service="github",operation="post",outcome="{outcome}"}}"#
            ),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(posts("ok"), 2.0, "{scrape}");
    assert_eq!(posts("retryable") + posts("quota"), 2.0, "{scrape}");
    let gets = r#"sp_outside_calls_total{service="github",operation="get",outcome="ok"}"#;
    assert!(metric(&scrape, gets).is_some_and(|n| n >= 2.0), "{scrape}");
}

/// Tests in the big catalogue: a run's cost must stay linear in it.
const BIG: usize = 2_000;

/// A catalogue of 2,000 tests runs for real to its verdict, and the run reads
/// the log about once: the rows the platform's store read while it ran are
/// at most twice the events it wrote (counted by the store, not timed).
async fn a_catalogue_of_2000_tests_runs_to_completed(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = sp_tests::generated_catalogue(dir.path(), BIG);
    let p = TestPlatform::start_with(backend, move |s| {
        let mut s = demo_runner(RUNNER)(s);
        s.catalogue = Some(file);
        s.log = "error".into();
        s
    })
    .await;
    p.caught_up().await;
    let before = p.store_counts().await;
    let run = p.push("big-1", '2').await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let r = p
            .query(
                "query($id: ID!) { run(id: $id) { status verdict passed failed } }",
                serde_json::json!({ "id": run }),
            )
            .await;
        if r["run"]["status"] == "COMPLETED" {
            assert_eq!(r["run"]["verdict"], "pass", "{r}");
            assert_eq!(r["run"]["passed"], BIG, "{r}");
            assert_eq!(r["run"]["failed"], 0, "{r}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run of {BIG} tests did not complete in 10 minutes: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    p.until(&run, "VmDeleted").await;
    p.caught_up().await;
    let after = p.store_counts().await;
    let read = after.rows_read - before.rows_read;
    let written = after.events_written - before.events_written;
    assert!(written > BIG as u64, "{written} events for {BIG} results?");
    assert!(
        read <= 2 * written,
        "the run read {read} rows of the log for {written} events written: more than twice"
    );
    let results = p
        .query(
            "query($id: ID!) { results(runId: $id) { passed } }",
            serde_json::json!({ "id": run }),
        )
        .await;
    let passed = results["results"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|o| o["passed"] == true).count());
    assert_eq!(passed, BIG, "the results model judged every test");
}

/// A contributor signs in, queues a run of two chosen tests on a commit of
/// their fork, whose build comes from the fork's own Actions artifacts; it
/// runs to a verdict, and GitHub hears nothing of it. What is not theirs,
/// over their limit, or asked while blocked is refused, saying why.
async fn a_contributors_custom_run_of_their_fork(backend: Backend) {
    use sp_tests::people::sign_in;
    let github = sp_tests::fake_github::FakeGithub::start().await;
    let fork = "alice/ccextractor";
    github.add_repository(fork, Some(sp_tests::github::REPO));
    github.add_repository("alice/other", None);
    github.add_repository("bob/ccextractor", Some(sp_tests::github::REPO));
    build_on_github(&github, fork, &sha('c'), 41);
    let p = fork_platform(backend, &github, |mut s| {
        s.contributors.waiting = 1;
        s
    })
    .await;
    let root = sign_in(&p, &github, "root", 1).await;
    let alice = sign_in(&p, &github, "alice", 2).await;
    const QUEUE: &str = "mutation($r: String!, $t: [String!]!) {
        queueCustomRun(repository: $r, commitSha: \"cccccccccccccccccccccccccccccccccccccccc\", tests: $t) }";
    let queue = |who: &sp_tests::people::Session, repo: &str, tests: &[&str]| {
        let (who, repo) = (who.clone(), repo.to_string());
        let tests: Vec<String> = tests.iter().map(|t| t.to_string()).collect();
        let p = &p;
        async move {
            who.graphql(p, QUEUE, serde_json::json!({ "r": repo, "t": tests }))
                .await
        }
    };
    let code = |answer: &Value| answer["errors"][0]["extensions"]["code"].clone();

    // A reader may not; a contributor may.
    let answer = queue(&alice, fork, &["upper-hello", "upper-fox"]).await;
    assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
    root.set_role(&p, "alice", "contributor").await;
    for (repo, why) in [
        ("bob/ccextractor", "belongs to bob"),
        ("alice/other", "not a fork of CCExtractor/ccextractor"),
    ] {
        let answer = queue(&alice, repo, &["upper-hello"]).await;
        assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
        assert!(answer.to_string().contains(why), "{answer}");
    }
    let answer = queue(&alice, "alice/nothing", &["upper-hello"]).await;
    assert_eq!(code(&answer), "NOT_FOUND", "{answer}");
    let answer = queue(&alice, fork, &["no-such-test"]).await;
    assert_eq!(code(&answer), "INVALID_INPUT", "{answer}");

    let answer = queue(&alice, fork, &["upper-hello", "upper-broken"]).await;
    let run = answer["data"]["queueCustomRun"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    let trail = p.until(&run, "Completed").await;
    let queued = &trail.first().expect("queued").1;
    assert_eq!(queued["trigger"]["kind"], "custom", "{queued}");
    assert_eq!(queued["repository"], fork);
    let tests: Vec<&str> = queued["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(tests, ["upper-broken", "upper-hello"]);
    let completed = &trail
        .iter()
        .find(|(t, _)| t == "Completed")
        .expect("completed")
        .1;
    assert_eq!(completed["counts"]["passed"], 2, "{completed}");
    p.caught_up().await;
    let row = p
        .query(
            "query($id: ID!) { run(id: $id) { trigger requestedBy outcome } }",
            serde_json::json!({ "id": run }),
        )
        .await;
    assert_eq!(
        row["run"],
        serde_json::json!({ "trigger": "custom", "requestedBy": "alice", "outcome": "PASS" })
    );

    // Her own run again: allowed, and custom too. Her limit is one at a
    // time, so a second run while it waits is refused.
    let answer = alice
        .graphql(
            &p,
            "mutation($id: ID!) { retryRun(id: $id) }",
            serde_json::json!({ "id": run }),
        )
        .await;
    let again = answer["data"]["retryRun"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    p.caught_up().await;
    let answer = queue(&alice, fork, &["upper-hello"]).await;
    assert_eq!(code(&answer), "REFUSED", "{answer}");
    assert!(
        answer.to_string().contains("may have 1 at once"),
        "{answer}"
    );
    p.until(&again, "Completed").await;

    // Blocked, she can still sign in and read, but not queue.
    let answer = root
        .graphql(
            &p,
            "mutation { blockUser(login: \"alice\", reason: \"spam\") }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(answer["data"]["blockUser"], true, "{answer}");
    p.caught_up().await;
    let answer = queue(&alice, fork, &["upper-hello"]).await;
    assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
    assert!(answer.to_string().contains("blocked (spam)"), "{answer}");
    let answer = alice
        .graphql(
            &p,
            "mutation($id: ID!) { retryRun(id: $id) }",
            serde_json::json!({ "id": run }),
        )
        .await;
    assert_eq!(code(&answer), "FORBIDDEN", "nor run again: {answer}");
    assert!(answer.to_string().contains("blocked (spam)"), "{answer}");

    // Nothing reached GitHub but the reads: no status, check run or comment.
    assert_eq!(github.statuses(), vec![]);
    assert_eq!(github.check_runs(fork), Vec::<Value>::new());
    assert_eq!(
        github.check_runs(sp_tests::github::REPO),
        Vec::<Value>::new()
    );
    p.stop().await;
}

/// With four eyes on, a maintainer cannot make the output of her own
/// change the baseline; another maintainer can, and she may still accept it
/// as a variant.
async fn four_eyes_keep_an_author_from_approving_her_own_baseline(backend: Backend) {
    use sp_tests::people::sign_in;
    let github = sp_tests::fake_github::FakeGithub::start().await;
    github.add_repository("maria/ccextractor", Some(sp_tests::github::REPO));
    build_on_github(&github, "maria/ccextractor", &sha('d'), 51);
    let p = fork_platform(backend, &github, |mut s| {
        s.four_eyes_baselines = true;
        s
    })
    .await;
    let root = sign_in(&p, &github, "root", 1).await;
    for login in ["maria", "olga"] {
        root.set_role(&p, login, "maintainer").await;
    }
    let maria = sign_in(&p, &github, "maria", 2).await;
    let olga = sign_in(&p, &github, "olga", 3).await;
    let answer = maria
        .graphql(
            &p,
            "mutation { queueCustomRun(repository: \"maria/ccextractor\",
                commitSha: \"dddddddddddddddddddddddddddddddddddddddd\", tests: [\"upper-fox\"]) }",
            serde_json::json!({}),
        )
        .await;
    let run = answer["data"]["queueCustomRun"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    p.until(&run, "Completed").await;
    const ACCEPT: &str = "mutation($run: ID!, $baseline: Boolean!) {
        acceptOutput(runId: $run, testId: \"upper-fox\", output: \"upper.txt\",
                     asBaseline: $baseline, reason: \"new casing\") }";
    let accept = |who: &sp_tests::people::Session, baseline: bool| {
        let (who, run, p) = (who.clone(), run.clone(), &p);
        async move {
            who.graphql(
                p,
                ACCEPT,
                serde_json::json!({ "run": run, "baseline": baseline }),
            )
            .await
        }
    };
    let code = |answer: &Value| answer["errors"][0]["extensions"]["code"].clone();
    let answer = accept(&maria, true).await;
    assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
    assert!(answer.to_string().contains("four eyes"), "{answer}");
    let answer = accept(&maria, false).await;
    assert_eq!(
        answer["data"]["acceptOutput"], true,
        "a variant she may accept: {answer}"
    );
    let answer = accept(&olga, true).await;
    assert_eq!(
        answer["data"]["acceptOutput"], true,
        "another maintainer may: {answer}"
    );
    p.stop().await;
}

sp_tests::on_both_backends!(
    four_eyes_keep_an_author_from_approving_her_own_baseline,
    a_contributors_custom_run_of_their_fork,
    a_catalogue_of_2000_tests_runs_to_completed,
    the_demo_catalogue_runs_to_a_verdict,
    a_killed_runner_is_retried_through_the_heartbeat_deadline,
    with_github_artifacts_and_statuses,
);
