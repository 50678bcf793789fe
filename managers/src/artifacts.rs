//! Fetches the build artifact of each queued run and records `ArtifactFetched`
//! (size, sha256) or `ArtifactUnavailable` (retryable: checked again until
//! the artifact deadline; permanent: the run fails).
//!
//! Downloads stream into the platform's one object store ([`Files`], kind
//! `Artifact`), capped in size and hashed on the way; only a complete file is
//! kept, under its sha256, so every replica serves it to runners, and a failed
//! download leaves nothing behind.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sp_domain::{ErrorClass, RunCommand, RunId};
use sp_files::{FileError, Files, Kind};
use sp_projections::{QueueProjection, RunRow, queries};
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::backoff::Backoff;
use crate::external::{CallError, call};
use crate::metrics::{Metrics, Service};
use crate::saga::FETCH_ARTIFACT;
use crate::wake::Wake;

const NAME: &str = "artifacts";

/// Where a run's artifact comes from.
#[derive(Debug, Clone)]
pub enum ArtifactSource {
    /// The runner needs nothing from the platform (its image carries the
    /// program under test): recorded as an empty artifact.
    None,
    /// Download from a URL made from a template with `{repository}`,
    /// `{commit}` and `{platform}`; `http(s)://` or `file://`.
    Url {
        template: String,
        store: ArtifactStore,
    },
    /// The artifact named per platform of the commit's GitHub Actions build.
    GithubActions {
        names: std::collections::BTreeMap<String, String>,
        store: ArtifactStore,
    },
}

/// Where fetched artifacts are kept, by sha256, and the limits of a download.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    pub files: Files,
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// Pauses between checks of an artifact that is not there yet.
const FIRST_CHECK_RETRY: Duration = Duration::from_secs(15);
const MAX_CHECK_RETRY: Duration = Duration::from_secs(120);

#[derive(Debug)]
struct Work {
    busy: HashSet<RunId>,
    /// Runs whose artifact was not there, waiting to look again.
    retry: Backoff<RunId>,
    /// The last reason recorded per run: the same one again is not news.
    last_reason: HashMap<RunId, String>,
}

pub async fn run(m: Managers, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[QueueProjection::NAME],
        m.config.tick,
    );
    let work = Arc::new(Mutex::new(Work {
        busy: HashSet::new(),
        retry: Backoff::new(FIRST_CHECK_RETRY, MAX_CHECK_RETRY),
        last_reason: HashMap::new(),
    }));
    let client = reqwest::Client::new();
    loop {
        match queries::runs_awaiting_artifact(&m.db.pool).await {
            Ok(waiting) => {
                m.health.ok(NAME);
                let now = Instant::now();
                {
                    // Runs that got their artifact, or ended, are forgotten.
                    let mut w = work.lock().unwrap_or_else(|p| p.into_inner());
                    w.retry.keep_only(waiting.iter().map(|r| &r.run_id));
                    w.last_reason
                        .retain(|run, _| waiting.iter().any(|r| &r.run_id == run));
                }
                for row in waiting {
                    {
                        let mut w = work.lock().unwrap_or_else(|p| p.into_inner());
                        if w.retry.waiting(&row.run_id, now) || !w.busy.insert(row.run_id) {
                            continue;
                        }
                    }
                    let (m, work, client) = (m.clone(), work.clone(), client.clone());
                    tokio::spawn(async move {
                        fetch_for(&m, &client, &row, &work).await;
                        work.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .busy
                            .remove(&row.run_id);
                    });
                }
            }
            Err(error) => m.health.failing(
                NAME,
                format!("cannot read the runs awaiting artifacts: {error}"),
            ),
        }
        if !wake.wait(None, &stop).await {
            return;
        }
    }
}

async fn fetch_for(m: &Managers, client: &reqwest::Client, row: &RunRow, work: &Arc<Mutex<Work>>) {
    let run = row.run_id;
    let fetched = match &m.config.artifacts {
        ArtifactSource::None => Ok(Fetched {
            size_bytes: 0,
            sha256: hex::encode(Sha256::digest(b"")),
            location: "none".into(),
        }),
        ArtifactSource::Url { template, store } => {
            let url = template
                .replace("{repository}", &row.repository)
                .replace("{commit}", &row.commit_sha)
                .replace("{platform}", &row.platform);
            download(&m.config.metrics, client, &url, None, store).await
        }
        ArtifactSource::GithubActions { names, store } => match &m.config.github {
            Some(github) => {
                from_github(
                    github,
                    client,
                    BuildOf {
                        repository: &row.repository,
                        sha: &row.commit_sha,
                        platform: &row.platform,
                    },
                    names,
                    store,
                    m.clock.now(),
                    &m.config.metrics,
                )
                .await
            }
            None => Err(CallError::permanent(
                "artifacts come from GitHub Actions, but no GitHub token is configured",
            )),
        },
    };
    let command = match fetched {
        Ok(f) => RunCommand::RecordArtifactFetched {
            size_bytes: f.size_bytes,
            sha256: f.sha256,
            location: f.location,
        },
        Err(e) => {
            let mut w = work.lock().unwrap_or_else(|p| p.into_inner());
            w.retry.failed(&run);
            let unchanged = w
                .last_reason
                .insert(run, e.message.clone())
                .is_some_and(|last| last == e.message);
            drop(w);
            // The same reason again is not news; the deadline bounds the wait.
            if unchanged && e.class != ErrorClass::Permanent {
                return;
            }
            RunCommand::RecordArtifactUnavailable {
                class: e.class,
                reason: e.message,
            }
        }
    };
    let outcome = m.command(NAME, run, &command).await;
    m.log_outcome(NAME, run, "fetch the artifact", outcome);
}

/// A stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size_bytes: u64,
    pub sha256: String,
    pub location: String,
}

/// Which build's artifact: a commit of a repository, for a platform.
#[derive(Debug, Clone, Copy)]
pub struct BuildOf<'a> {
    pub repository: &'a str,
    pub sha: &'a str,
    pub platform: &'a str,
}

/// Find the commit's artifact among its GitHub Actions builds and download it.
///
/// Not there is retryable while a build runs or a successful one finished
/// only minutes ago (artifacts upload after), and while the commit has no
/// build yet (the artifact deadline bounds that wait); it is permanent when
/// the build failed or the artifact expired.
pub async fn from_github(
    github: &crate::github::Github,
    client: &reqwest::Client,
    build: BuildOf<'_>,
    names: &std::collections::BTreeMap<String, String>,
    store: &ArtifactStore,
    now: chrono::DateTime<chrono::Utc>,
    metrics: &Metrics,
) -> Result<Fetched, CallError> {
    let BuildOf {
        repository,
        sha,
        platform,
    } = build;
    let name = names.get(platform).ok_or_else(|| {
        CallError::permanent(format!("no artifact name is configured for {platform}"))
    })?;
    let runs = github
        .workflow_runs(repository, sha)
        .await
        .map_err(|e| e.error)?;
    if runs.is_empty() {
        return Err(CallError::retryable(format!(
            "no GitHub Actions build of {} yet",
            &sha[..sha.len().min(10)]
        )));
    }
    let mut running = false;
    let mut recent_success = false;
    let mut failed = Vec::new();
    for run in &runs {
        let label = run.name.clone().unwrap_or_else(|| run.id.to_string());
        match (run.status.as_deref(), run.conclusion.as_deref()) {
            (Some("completed"), Some("success")) => {
                let artifacts = github
                    .artifacts(repository, run.id)
                    .await
                    .map_err(|e| e.error)?;
                if let Some(artifact) = artifacts.iter().find(|a| a.name == *name) {
                    if artifact.expired {
                        return Err(CallError::permanent(format!(
                            "artifact {name} of build {label} has expired: run the build again"
                        )));
                    }
                    if artifact.size_in_bytes > store.max_bytes {
                        return Err(CallError::permanent(format!(
                            "artifact {name} is {} bytes, over the {} byte limit",
                            artifact.size_in_bytes, store.max_bytes
                        )));
                    }
                    let token = github.token_for(repository).await.map_err(|e| e.error)?;
                    let url = &artifact.archive_download_url;
                    return download(metrics, client, url, Some(&token), store).await;
                }
                recent_success |= run
                    .updated_at
                    .is_some_and(|at| now - at < chrono::Duration::minutes(10));
            }
            (Some("completed"), conclusion) => {
                failed.push(format!(
                    "{label}: {}",
                    conclusion.unwrap_or("no conclusion")
                ));
            }
            _ => running = true,
        }
    }
    if running {
        return Err(CallError::retryable("the build is still running"));
    }
    if recent_success {
        return Err(CallError::retryable(format!(
            "artifact {name} is not uploaded yet"
        )));
    }
    if !failed.is_empty() {
        return Err(CallError::permanent(format!(
            "the build failed ({})",
            failed.join("; ")
        )));
    }
    Err(CallError::permanent(format!(
        "no build of this commit produced an artifact named {name}"
    )))
}

/// Download `url` into the store, streaming, capped and hashed.
pub async fn download(
    metrics: &Metrics,
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    store: &ArtifactStore,
) -> Result<Fetched, CallError> {
    let what = FETCH_ARTIFACT.on(url);
    let policy = crate::external::CallPolicy::new(store.timeout, 3);
    let fetched = call(&what, &policy, || download_once(client, url, bearer, store));
    metrics
        .outside_call(Service::Artifacts, "download", fetched)
        .await
}

async fn download_once(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    store: &ArtifactStore,
) -> Result<Fetched, CallError> {
    let stored = if let Some(path) = url.strip_prefix("file://") {
        store
            .files
            .put_path(
                Kind::Artifact,
                None,
                store.max_bytes,
                std::path::Path::new(path),
            )
            .await
    } else {
        let mut request = client.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::retryable(format!("request failed: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(CallError::retryable("404: not there (yet)"));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(CallError::retryable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(CallError::permanent(format!("HTTP {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > store.max_bytes)
        {
            return Err(too_large(store));
        }
        let expected = response.content_length();
        // Counted as it streams: a body shorter than announced is refused
        // before the store keeps it.
        let received = Arc::new(AtomicU64::new(0));
        let counted = received.clone();
        let body = response
            .bytes_stream()
            .map(move |chunk| {
                let chunk = chunk.map_err(|e| format!("download interrupted: {e}"))?;
                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok(chunk)
            })
            .chain(futures_util::stream::once(async move {
                let got = received.load(Ordering::Relaxed);
                match expected {
                    Some(n) if n != got => Err(format!("truncated download: {got} of {n} bytes")),
                    _ => Ok(bytes::Bytes::new()),
                }
            }));
        store
            .files
            .put(Kind::Artifact, None, store.max_bytes, Box::pin(body))
            .await
    };
    let stored = stored.map_err(|e| match e {
        FileError::TooLarge { .. } => too_large(store),
        FileError::Local { path, error } if error.kind() == std::io::ErrorKind::NotFound => {
            CallError::retryable(format!("{} does not exist (yet)", path.display()))
        }
        e if e.is_transient() => CallError::retryable(format!("storing the artifact: {e}")),
        e => CallError::permanent(format!("storing the artifact: {e}")),
    })?;
    Ok(Fetched {
        location: format!("artifacts/{}", stored.sha256),
        size_bytes: stored.size_bytes,
        sha256: stored.sha256,
    })
}

fn too_large(store: &ArtifactStore) -> CallError {
    CallError::permanent(format!(
        "the artifact is larger than the {} byte limit",
        store.max_bytes
    ))
}
