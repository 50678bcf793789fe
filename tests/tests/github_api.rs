//! GitHub through octocrab against a fake GitHub on loopback: artifacts of
//! GitHub Actions builds, and commit statuses reported by the platform.

use std::collections::BTreeMap;
use std::time::Duration;

use sp_domain::ErrorClass;
use sp_managers::artifacts::{ArtifactStore, from_github};
use sp_managers::github::{Github, GithubConfig};
use sp_tests::fake_github::{Blob, Failure, FakeGithub, zip_with};

const SHA: &str = "2222222222222222222222222222222222222222";

fn github(fake: &FakeGithub, timeout: Duration) -> Github {
    Github::new(GithubConfig {
        api_url: fake.url.clone(),
        token: "ghp_test".into(),
        app: None,
        timeout,
    })
    .expect("client")
}

fn store(dir: &std::path::Path, max_bytes: u64) -> ArtifactStore {
    ArtifactStore {
        files: sp_files::Files::open(&dir.join("objects").display().to_string()).expect("store"),
        max_bytes,
        timeout: Duration::from_secs(2),
    }
}

fn names() -> BTreeMap<String, String> {
    BTreeMap::from([("linux".to_string(), "ccextractor-linux".to_string())])
}

async fn fetch(
    fake: &FakeGithub,
    dir: &std::path::Path,
    max_bytes: u64,
) -> Result<sp_managers::artifacts::Fetched, sp_managers::CallError> {
    let gh = github(fake, Duration::from_secs(2));
    from_github(
        &gh,
        &reqwest::Client::new(),
        sp_managers::artifacts::BuildOf {
            repository: "o/r",
            sha: SHA,
            platform: "linux",
        },
        &names(),
        &store(dir, max_bytes),
        chrono::Utc::now(),
        &sp_managers::Metrics::default(),
    )
    .await
}

/// The files in the store's artifacts and unfinished uploads.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    ["artifacts", "incoming"]
        .iter()
        .flat_map(|folder| {
            std::fs::read_dir(dir.join("objects").join(folder))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn an_artifact_is_found_and_stored_by_its_sha256() {
    let fake = FakeGithub::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let zip = zip_with("upcase.sh", b"#!/bin/sh\n");
    // Newer builds of another commit, and of the same commit in a fork,
    // are not this commit's build.
    fake.add_run("o/r", SHA, 7, "completed", Some("success"));
    fake.add_artifact(7, 70, "ccextractor-linux", zip.clone(), false);
    fake.add_run("o/r", &"3".repeat(40), 8, "completed", Some("success"));
    fake.add_artifact(8, 80, "ccextractor-linux", b"other".to_vec(), false);
    fake.add_run("fork/r", SHA, 9, "completed", Some("success"));
    fake.add_artifact(9, 90, "ccextractor-linux", b"fork".to_vec(), false);
    let fetched = fetch(&fake, dir.path(), 1 << 20).await.expect("found");
    assert_eq!(fetched.size_bytes, zip.len() as u64);
    assert_eq!(
        std::fs::read(dir.path().join("objects").join(&fetched.location)).expect("stored"),
        zip
    );
    assert!(fetched.location.ends_with(&fetched.sha256));
    assert_eq!(leftovers(dir.path()), vec![fetched.sha256]);
}

#[tokio::test]
async fn missing_then_found() {
    let fake = FakeGithub::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let e = fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect_err("no build yet");
    assert_eq!(e.class, ErrorClass::Retryable);
    assert!(e.message.contains("no GitHub Actions build"), "{e}");
    fake.add_run("o/r", SHA, 8, "in_progress", None);
    let e = fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect_err("still building");
    assert_eq!(e.class, ErrorClass::Retryable);
    assert!(e.message.contains("still running"), "{e}");
    fake.add_run("o/r", SHA, 8, "completed", Some("success"));
    let e = fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect_err("not uploaded yet");
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    fake.add_artifact(8, 80, "ccextractor-linux", b"build".to_vec(), false);
    fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect("found at last");
}

#[tokio::test]
async fn a_failed_build_or_an_expired_artifact_is_permanent() {
    let fake = FakeGithub::start().await;
    let dir = tempfile::tempdir().expect("dir");
    fake.add_run("o/r", SHA, 9, "completed", Some("failure"));
    let e = fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect_err("build failed");
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("the build failed"), "{e}");

    let fake = FakeGithub::start().await;
    fake.add_run("o/r", SHA, 10, "completed", Some("success"));
    fake.add_artifact(10, 100, "ccextractor-linux", b"old".to_vec(), true);
    let e = fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect_err("expired");
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("expired"), "{e}");
}

#[tokio::test]
async fn server_errors_hangs_truncation_and_size_are_classified_and_leave_no_file() {
    let dir = tempfile::tempdir().expect("dir");
    let fake = FakeGithub::start().await;
    fake.fail_runs_listing(Some(502));
    let e = fetch(&fake, dir.path(), 1 << 20).await.expect_err("5xx");
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");

    let fake = FakeGithub::start().await;
    fake.add_run("o/r", SHA, 11, "completed", Some("success"));
    fake.add_artifact(11, 110, "ccextractor-linux", vec![7u8; 64 * 1024], false);
    fake.set_blob_mode(Blob::Truncated);
    let e = fetch(&fake, dir.path(), 1 << 20)
        .await
        .expect_err("truncated");
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");

    fake.set_blob_mode(Blob::Hang);
    let started = std::time::Instant::now();
    let e = fetch(&fake, dir.path(), 1 << 20).await.expect_err("hang");
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(e.message.contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30));

    fake.set_blob_mode(Blob::Whole);
    let e = fetch(&fake, dir.path(), 1024).await.expect_err("oversized");
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("limit"), "{e}");
    assert!(
        leftovers(dir.path()).is_empty(),
        "failed downloads leave nothing: {:?}",
        leftovers(dir.path())
    );
}

#[tokio::test]
async fn statuses_classify_rate_limits_server_errors_and_hangs() {
    let fake = FakeGithub::start().await;
    let gh = github(&fake, Duration::from_millis(500));
    fake.fail_statuses(vec![
        Failure::Status(502),
        Failure::RateLimited {
            retry_after_secs: 3,
        },
        Failure::Hang,
        Failure::Status(422),
    ]);
    // A kept-alive connection can be closed under the next request (seen
    // in CI as "client error (SendRequest)", on any step). That is retryable
    // and the reporter retries it; this test retries it too, but only when
    // the request never reached the fake, so each canned failure is still
    // answered to exactly one request.
    let send = || {
        gh.create_status(
            "o/r",
            SHA,
            "pending",
            "CI - linux",
            "queued",
            "http://x/runs/1",
        )
    };
    let post = || async {
        let attempts = fake.status_attempts();
        match send().await {
            Err(e)
                if e.error.message.contains("SendRequest")
                    && fake.status_attempts() == attempts =>
            {
                send().await
            }
            other => other,
        }
    };
    let e = post().await.expect_err("5xx");
    assert_eq!((e.error.class, e.wait), (ErrorClass::Retryable, None));
    let e = post().await.expect_err("rate limited");
    assert_eq!(e.error.class, ErrorClass::Retryable);
    assert_eq!(e.wait, Some(Duration::from_secs(3)));
    let e = post().await.expect_err("hang");
    assert_eq!(e.error.class, ErrorClass::Retryable);
    assert!(e.error.message.contains("no answer"), "{}", e.error.message);
    let e = post().await.expect_err("422");
    assert_eq!(e.error.class, ErrorClass::Permanent);
    post().await.expect("accepted");
    assert_eq!(fake.statuses().len(), 1);
}
