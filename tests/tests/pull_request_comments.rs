//! One summary comment per pull request, against a fake GitHub as strict as
//! the real one: posted when the head's runs finish, edited in place for the
//! next head, never posted twice (a redelivered webhook, a comment posted by
//! a process that died before recording it, a second replica), and a
//! refusal recorded where a person can read it.

use std::time::Duration;

use serde_json::{Value, json};
use sp_managers::summary::MARKER;
use sp_tests::fake_github::{Failure, FakeGithub};
use sp_tests::github::{self, REPO, sha};
use sp_tests::{
    Backend, TestPlatform, as_github_app, demo_base_results, demo_dir, demo_result as result,
    eventually,
};

async fn platform(backend: Backend, fake: &FakeGithub) -> TestPlatform {
    platform_with(backend, fake, false).await
}

/// With `app`, GitHub is called as the tests' App, which reports check runs.
async fn platform_with(backend: Backend, fake: &FakeGithub, app: bool) -> TestPlatform {
    let url = fake.url.clone();
    if app {
        fake.install_test_app();
    }
    TestPlatform::start_with(backend, move |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s.local_vm_command = "sleep 600".into();
        s.public_url = Some("https://ci.example.org".into());
        if app {
            as_github_app(s, &url)
        } else {
            s.github_api_url = url;
            s.github_token = Some("ghp_test".into());
            s
        }
    })
    .await
}

/// The comments on the pull request that carry the platform's marker.
fn summaries(fake: &FakeGithub, number: u64) -> Vec<Value> {
    fake.comments(REPO, number)
        .into_iter()
        .filter(|c| c["body"].as_str().unwrap_or("").starts_with(MARKER))
        .collect()
}

/// master at 2, with the demo's base results.
async fn base_run(p: &TestPlatform) {
    let base = p.push("base", '2').await;
    p.finish_run(&base, &demo_base_results()).await;
}

/// The pull request stream's events of `kind`, as JSON.
async fn pr_events(p: &TestPlatform, number: u64, kind: &str) -> Vec<Value> {
    let stream = sp_domain::pull_request::stream(REPO, number);
    p.db.database
        .store
        .read_stream(&stream, 1)
        .await
        .expect("the pull request's stream")
        .into_iter()
        .filter(|e| e.event_type == kind)
        .map(|e| e.data.to_value())
        .collect()
}

async fn one_comment_is_posted_then_edited_in_place(backend: Backend) {
    let fake = FakeGithub::start().await;
    // Someone else's comment is there first: it is neither edited nor taken
    // for the platform's.
    let other = fake.add_comment(REPO, 5, "reviewer", "Looks good, but run the tests.");
    // As a GitHub App: the check run says the same as the comment.
    let p = platform_with(backend, &fake, true).await;
    base_run(&p).await;

    let head = p
        .pull_request("c-open", "opened", 5, ('3', '2'), "2026-11-30T10:00:00Z")
        .await;
    // GitHub redelivers the same delivery: nothing new is queued or said.
    let payload = github::onto(
        github::pull_request(
            "opened",
            5,
            &sha('3'),
            "2026-11-30T10:00:00Z",
            "contributor",
        ),
        &sha('2'),
    );
    let (status, _) = p.deliver("pull_request", "c-open", &payload).await;
    assert_eq!(status, 200);
    // Its build breaks upper-hello, fixes upper-broken and changes the
    // failing output of upper-fox.
    p.finish_run(
        &head,
        &[
            result("upper-hello", 0, &"c".repeat(64)),
            result("upper-fox", 0, &"d".repeat(64)),
            result("upper-broken", 2, "equal"),
        ],
    )
    .await;
    let first = eventually("the summary comment", || async {
        let found = summaries(&fake, 5);
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(first.len(), 1, "{first:?}");
    let id = first[0]["id"].as_u64().expect("an id");
    let body = first[0]["body"].as_str().unwrap_or_default().to_string();
    println!("--- the comment after the first head ---\n{body}");
    for expected in [
        "### Sample Platform: 1 broken here, 1 failing differently, 1 fixed here",
        "**fail** (2 of 3 failed)",
        "| 1 | 1 | 1 | 0 | 0 | 0 |",
        &format!(
            "- Broken here: [`upper-hello`](https://ci.example.org/runs/{head}#test-upper-hello)"
        ),
        "- Failing differently: [`upper-fox`]",
        "- Fixed here: [`upper-broken`]",
        "the head of master the pull request is compared with on GitHub, on linux",
    ] {
        assert!(body.contains(expected), "{expected:?} is not in:\n{body}");
    }
    assert_eq!(fake.comment_writes(), (1, 0));
    let check = eventually("the head's completed check run", || async {
        fake.check_runs(REPO)
            .into_iter()
            .find(|c| c["head_sha"] == sha('3') && c["status"] == "completed")
    })
    .await;
    let summary = check["output"]["summary"].as_str().unwrap_or_default();
    println!("--- the check run's summary ---\n{summary}");
    for expected in [
        "- Broken here: [`upper-hello`]",
        "- Failing differently: [`upper-fox`]",
        "- Fixed here: [`upper-broken`]",
    ] {
        assert!(
            summary.contains(expected),
            "{expected:?} is not in:\n{summary}"
        );
    }
    assert_eq!(check["output"]["title"], "2 of 3 failed, 1 broken here");
    let written = eventually("CommentWritten", || async {
        let events = pr_events(&p, 5, "CommentWritten").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(written[0]["comment_id"], json!(id));
    assert_eq!(written[0]["posted"], json!(true));

    // The next head fixes upper-hello again: the same comment is edited.
    let next = p
        .pull_request(
            "c-sync",
            "synchronize",
            5,
            ('4', '2'),
            "2026-11-30T11:00:00Z",
        )
        .await;
    p.finish_run(
        &next,
        &[
            result("upper-hello", 0, "equal"),
            result("upper-fox", 0, &"d".repeat(64)),
            result("upper-broken", 2, "equal"),
        ],
    )
    .await;
    let edited = eventually("the edited comment", || async {
        let found = summaries(&fake, 5);
        let body = found.first()?["body"].as_str()?.to_string();
        body.contains("`4444444444`").then_some(found)
    })
    .await;
    assert_eq!(edited.len(), 1, "one comment, edited: {edited:?}");
    assert_eq!(edited[0]["id"], json!(id));
    let body = edited[0]["body"].as_str().unwrap_or_default();
    println!("--- the same comment after the second head ---\n{body}");
    assert!(
        body.contains("### Sample Platform: 1 failing differently, 1 fixed here"),
        "{body}"
    );
    assert!(!body.contains("Broken here"), "{body}");
    assert_eq!(fake.comment_writes(), (1, 1));
    // The other comment is untouched.
    let others: Vec<Value> = fake
        .comments(REPO, 5)
        .into_iter()
        .filter(|c| c["id"] == json!(other))
        .collect();
    assert_eq!(others[0]["body"], "Looks good, but run the tests.");

    // Nothing more is written while nothing changes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.comment_writes(), (1, 1));
}

/// A process posted the comment and died before recording it: the next one
/// finds it by its marker and edits it.
async fn a_comment_posted_but_not_recorded_is_edited_not_posted_again(backend: Backend) {
    let fake = FakeGithub::start().await;
    let orphan = fake.add_comment(
        REPO,
        6,
        "sample-platform[bot]",
        &format!("{MARKER}\n### Sample Platform: (written before a crash)"),
    );
    let p = platform(backend, &fake).await;
    base_run(&p).await;
    let head = p
        .pull_request("o-open", "opened", 6, ('3', '2'), "2026-11-30T10:00:00Z")
        .await;
    p.finish_run(&head, &demo_base_results()).await;
    let written = eventually("CommentWritten", || async {
        let events = pr_events(&p, 6, "CommentWritten").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(written[0]["comment_id"], json!(orphan));
    assert_eq!(written[0]["posted"], json!(false));
    let found = summaries(&fake, 6);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]["body"]
            .as_str()
            .unwrap_or("")
            .contains("nothing broken"),
        "{found:?}"
    );
    assert_eq!(fake.comment_writes(), (0, 1));
}

/// GitHub refuses: the refusal is recorded on the pull request, the write
/// is tried again after a retryable one, and a second replica sharing the
/// database posts nothing of its own. With no earlier run of master, the
/// comment says there was nothing to compare with, not "0 broken".
async fn refusals_are_recorded_and_a_second_replica_posts_nothing(backend: Backend) {
    let fake = FakeGithub::start().await;
    fake.fail_comments(vec![Failure::Status(502)]);
    let p = platform(backend, &fake).await;
    let replica = match backend {
        Backend::Postgres => Some(p.replica().await),
        Backend::Sqlite => None,
    };
    let head = p
        .pull_request("r-open", "opened", 7, ('3', '2'), "2026-11-30T10:00:00Z")
        .await;
    p.finish_run(&head, &demo_base_results()).await;
    let failed = eventually("CommentFailed", || async {
        let events = pr_events(&p, 7, "CommentFailed").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(failed[0]["class"], "retryable");
    assert!(
        failed[0]["message"].as_str().unwrap_or("").contains("502"),
        "{failed:?}"
    );
    // Tried again after the pause: one comment.
    eventually("the comment after the retry", || async {
        let found = summaries(&fake, 7);
        (found.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found = summaries(&fake, 7);
    assert_eq!(found.len(), 1);
    let body = found[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("### Sample Platform: 1 platform(s) with no earlier run to compare with"),
        "{body}"
    );
    assert!(body.contains("| – | – | – | – | – | – |"), "{body}");
    assert!(body.contains("**linux**: no reference"), "{body}");
    assert_eq!(fake.comment_writes().0, 1);
    drop(replica);
}

sp_tests::on_both_backends!(
    one_comment_is_posted_then_edited_in_place,
    a_comment_posted_but_not_recorded_is_edited_not_posted_again,
    refusals_are_recorded_and_a_second_replica_posts_nothing
);
