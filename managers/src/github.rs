//! GitHub's REST API, through octocrab: commit statuses, pull request
//! comments, and the build artifacts of GitHub Actions.
//!
//! Every call has a timeout (octocrab's are client-wide, so each call is also
//! wrapped in one). octocrab's own retries are off: failures are classified
//! here (5xx and timeouts retryable; a rate limit retryable after the time
//! GitHub names in `Retry-After` or `x-ratelimit-reset`; other 4xx
//! permanent) and the platform's one mechanism retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::external::CallError;
use crate::metrics::{Metrics, Service};

/// How to reach GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubConfig {
    /// `https://api.github.com`, or a fake one in tests.
    pub api_url: String,
    /// A personal or fine-grained token (empty with an App).
    pub token: String,
    /// A GitHub App: every call is made with the installation token of the
    /// repository's installation (needed for check runs).
    pub app: Option<GithubApp>,
    pub timeout: Duration,
}

/// A GitHub App's identity: its id and its private key (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct GithubApp {
    pub app_id: u64,
    pub private_key_pem: String,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("private_key_pem", &"<secret>")
            .finish()
    }
}

/// A failed call; `wait` is how long GitHub asked us to wait (rate limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubError {
    pub error: CallError,
    pub wait: Option<Duration>,
    /// GitHub's answer, when it gave one.
    pub status: Option<u16>,
}

impl GithubError {
    pub fn not_found(&self) -> bool {
        self.status == Some(404)
    }
}

impl From<CallError> for GithubError {
    fn from(error: CallError) -> Self {
        GithubError {
            error,
            wait: None,
            status: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Github {
    /// With a token, the client for every call; with an App, the App's own
    /// (JWT) client, which finds installations.
    client: Octocrab,
    config: GithubConfig,
    /// With an App: per repository, a client on its installation (octocrab
    /// mints and renews the installation token).
    installations: Arc<Mutex<HashMap<String, Octocrab>>>,
    /// Where its calls are counted and timed, once the platform says.
    metrics: Option<Metrics>,
}

/// A response as octocrab hands it over.
type Response = http::Response<http_body_util::combinators::BoxBody<bytes::Bytes, octocrab::Error>>;

/// The whole body of a response, as text.
async fn collect(response: Response) -> Result<String, String> {
    use http_body_util::BodyExt;
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The wait GitHub asks for, from `Retry-After` (seconds) or
/// `x-ratelimit-reset` (epoch seconds) when `x-ratelimit-remaining` is 0.
fn rate_limit_wait(headers: &http::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if header("x-ratelimit-remaining") == Some("0")
        && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    None
}

impl Github {
    pub fn new(config: GithubConfig) -> Result<Github, String> {
        let builder = Octocrab::builder()
            .base_uri(config.api_url.as_str())
            .map_err(|e| format!("GitHub API URL {:?}: {e}", config.api_url))?;
        let builder = match &config.app {
            Some(app) => builder
                .app_from_rsa_pem(
                    octocrab::models::AppId(app.app_id),
                    app.private_key_pem.as_bytes(),
                )
                .map_err(|e| {
                    format!(
                        "GitHub App {}: its private key is not an RSA private key in PEM format ({e})",
                        app.app_id
                    )
                })?,
            None => builder.personal_token(config.token.clone()),
        };
        let client = builder
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(config.timeout))
            .set_write_timeout(Some(config.timeout))
            .add_retry_config(RetryConfig::None)
            .build()
            .map_err(|e| format!("GitHub client: {e}"))?;
        Ok(Github {
            client,
            config,
            installations: Arc::default(),
            metrics: None,
        })
    }

    /// Count and time every call in `metrics`.
    pub fn counted_by(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The client that acts on `repository`: with an App, on the
    /// repository's installation (found once, then kept).
    async fn client_for(&self, repository: &str) -> Result<Octocrab, GithubError> {
        if self.config.app.is_none() {
            return Ok(self.client.clone());
        }
        let key = repository.to_ascii_lowercase();
        if let Some(client) = self
            .installations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(client.clone());
        }
        #[derive(Deserialize)]
        struct Installation {
            id: u64,
        }
        let what = format!("find the GitHub App's installation on {repository}");
        let call = self
            .client
            ._get(format!("/repos/{repository}/installation"));
        let found: Installation = self
            .answer(&what, self.send("get", &what, call).await?)
            .await?;
        let client = self
            .client
            .installation(octocrab::models::InstallationId(found.id))
            .map_err(|e| CallError::permanent(format!("{what}: {e}")))?;
        self.installations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, client.clone());
        Ok(client)
    }

    /// The token a download from `repository` is made with: the configured
    /// one, or the installation's.
    pub async fn token_for(&self, repository: &str) -> Result<String, GithubError> {
        if self.config.app.is_none() {
            return Ok(self.config.token.clone());
        }
        use secrecy::ExposeSecret;
        let client = self.client_for(repository).await?;
        let what = format!("get an installation token for {repository}");
        let token = tokio::time::timeout(self.config.timeout, client.installation_token())
            .await
            .map_err(|_| {
                CallError::retryable(format!(
                    "{what}: no answer within {:?}",
                    self.config.timeout
                ))
            })?
            .map_err(|e| CallError::retryable(format!("{what}: {e}")))?;
        Ok(token.expose_secret().to_string())
    }

    pub fn config(&self) -> &GithubConfig {
        &self.config
    }

    /// Classify a response that is not a success.
    async fn failure(what: &str, response: Response) -> GithubError {
        let status = response.status();
        let wait = rate_limit_wait(response.headers());
        let body = collect(response).await.unwrap_or_default();
        let message = format!(
            "{what}: HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        );
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN
                && (wait.is_some() || body.to_ascii_lowercase().contains("rate limit")));
        let code = Some(status.as_u16());
        if rate_limited {
            return GithubError {
                error: CallError::retryable(message),
                wait: Some(wait.unwrap_or(Duration::from_secs(60))),
                status: code,
            };
        }
        let error = if status.is_server_error() {
            CallError::retryable(message)
        } else {
            CallError::permanent(message)
        };
        GithubError {
            error,
            wait: None,
            status: code,
        }
    }

    /// One request, bounded by the timeout; a response that is not a
    /// success is classified.
    /// One request (`method`, for the metrics), counted and timed.
    async fn send(
        &self,
        method: &'static str,
        what: &str,
        call: impl std::future::Future<Output = Result<Response, octocrab::Error>>,
    ) -> Result<Response, GithubError> {
        let Some(metrics) = &self.metrics else {
            return self.send_once(what, call).await;
        };
        // Counted by the class of the failure; the error's details (the
        // rate limit's reset) are kept for the caller.
        let mut failure = None;
        let counted = metrics.outside_call(Service::Github, method, async {
            self.send_once(what, call).await.map_err(|e| {
                let class = e.error.clone();
                failure = Some(e);
                class
            })
        });
        match counted.await {
            Ok(response) => Ok(response),
            Err(error) => Err(failure.unwrap_or_else(|| error.into())),
        }
    }

    async fn send_once(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<Response, octocrab::Error>>,
    ) -> Result<Response, GithubError> {
        let response = tokio::time::timeout(self.config.timeout, call)
            .await
            .map_err(|_| {
                CallError::retryable(format!(
                    "{what}: no answer within {:?}",
                    self.config.timeout
                ))
            })?
            .map_err(|e| CallError::retryable(format!("{what}: {e}")))?;
        if !response.status().is_success() {
            return Err(Self::failure(what, response).await);
        }
        Ok(response)
    }

    /// `GET path` on `repository`'s behalf.
    async fn get_json<T: DeserializeOwned>(
        &self,
        repository: &str,
        what: &str,
        path: &str,
    ) -> Result<T, GithubError> {
        let client = self.client_for(repository).await?;
        let response = self.send("get", what, client._get(path)).await?;
        self.answer(what, response).await
    }

    /// `POST /repos/{repository}/statuses/{sha}`.
    pub async fn create_status(
        &self,
        repository: &str,
        sha: &str,
        state: &str,
        context: &str,
        description: &str,
        target_url: &str,
    ) -> Result<(), GithubError> {
        let what = crate::saga::REPORT_STATUS.on(&format!(
            "{state} for {repository}@{}",
            &sha[..sha.len().min(10)]
        ));
        let body = serde_json::json!({
            "state": state,
            "context": context,
            "description": description,
            "target_url": target_url,
        });
        let route = format!("/repos/{repository}/statuses/{sha}");
        self.post(repository, &what, route, &body).await.map(|_| ())
    }

    /// The comments of an issue or pull request, oldest first, a page of
    /// up to 100 at a time (`page` from 1).
    pub async fn comments(
        &self,
        repository: &str,
        number: u64,
        page: u32,
    ) -> Result<Vec<Comment>, GithubError> {
        self.get_json(
            repository,
            "list the pull request's comments",
            &format!("/repos/{repository}/issues/{number}/comments?per_page=100&page={page}"),
        )
        .await
    }

    /// `POST /repos/{repository}/issues/{number}/comments`: the new comment.
    pub async fn create_comment(
        &self,
        repository: &str,
        number: u64,
        body: &str,
    ) -> Result<Comment, GithubError> {
        let what = crate::saga::WRITE_COMMENT.on(&format!("{repository}#{number}"));
        let body = serde_json::json!({ "body": body });
        let route = format!("/repos/{repository}/issues/{number}/comments");
        let response = self.post(repository, &what, route, &body).await?;
        self.answer(&what, response).await
    }

    /// `PATCH /repos/{repository}/issues/comments/{id}`.
    pub async fn update_comment(
        &self,
        repository: &str,
        id: u64,
        body: &str,
    ) -> Result<Comment, GithubError> {
        let what = crate::saga::WRITE_COMMENT.on(&format!("{repository} comment {id}"));
        let body = serde_json::json!({ "body": body });
        let route = format!("/repos/{repository}/issues/comments/{id}");
        let response = self.patch(repository, &what, route, &body).await?;
        self.answer(&what, response).await
    }

    /// The check run named `name` on commit `sha` that the platform made
    /// for run `external_id`, if there is one (found after a crash between
    /// making it and recording it).
    pub async fn find_check_run(
        &self,
        repository: &str,
        sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>, GithubError> {
        #[derive(Deserialize)]
        struct Found {
            id: u64,
            #[serde(default)]
            external_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Page {
            check_runs: Vec<Found>,
        }
        let page: Page = self
            .get_json(
                repository,
                "list the commit's check runs",
                &format!(
                    "/repos/{repository}/commits/{sha}/check-runs?check_name={}&filter=all&per_page=100",
                    query_value(name)
                ),
            )
            .await?;
        Ok(page
            .check_runs
            .into_iter()
            .find(|c| c.external_id.as_deref() == Some(external_id))
            .map(|c| c.id))
    }

    /// `POST /repos/{repository}/check-runs`: the new check run's id.
    pub async fn create_check_run(
        &self,
        repository: &str,
        body: &serde_json::Value,
    ) -> Result<u64, GithubError> {
        let what = crate::saga::REPORT_STATUS.on(&format!("check run on {repository}"));
        let route = format!("/repos/{repository}/check-runs");
        let response = self.post(repository, &what, route, body).await?;
        let made: CheckRun = self.answer(&what, response).await?;
        Ok(made.id)
    }

    /// `PATCH /repos/{repository}/check-runs/{id}`.
    pub async fn update_check_run(
        &self,
        repository: &str,
        id: u64,
        body: &serde_json::Value,
    ) -> Result<(), GithubError> {
        let what = crate::saga::REPORT_STATUS.on(&format!("check run {id} on {repository}"));
        let route = format!("/repos/{repository}/check-runs/{id}");
        self.patch(repository, &what, route, body).await.map(|_| ())
    }

    /// `POST route` with a JSON body on `repository`'s behalf.
    async fn post(
        &self,
        repository: &str,
        what: &str,
        route: String,
        body: &serde_json::Value,
    ) -> Result<Response, GithubError> {
        let client = self.client_for(repository).await?;
        self.send("post", what, client._post(route, Some(body)))
            .await
    }

    /// `PATCH route` with a JSON body on `repository`'s behalf.
    async fn patch(
        &self,
        repository: &str,
        what: &str,
        route: String,
        body: &serde_json::Value,
    ) -> Result<Response, GithubError> {
        let client = self.client_for(repository).await?;
        self.send("patch", what, client._patch(route, Some(body)))
            .await
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        what: &str,
        response: Response,
    ) -> Result<T, GithubError> {
        let body = collect(response)
            .await
            .map_err(|e| CallError::retryable(format!("{what}: {e}")))?;
        serde_json::from_str(&body)
            .map_err(|e| CallError::permanent(format!("{what}: unexpected answer: {e}")).into())
    }

    /// The workflow runs of a commit, newest first.
    pub async fn workflow_runs(
        &self,
        repository: &str,
        sha: &str,
    ) -> Result<Vec<WorkflowRun>, GithubError> {
        let page: WorkflowRuns = self
            .get_json(
                repository,
                "list the commit's workflow runs",
                &format!("/repos/{repository}/actions/runs?head_sha={sha}&per_page=100"),
            )
            .await?;
        Ok(page.workflow_runs)
    }

    /// The artifacts of a workflow run.
    pub async fn artifacts(
        &self,
        repository: &str,
        run_id: u64,
    ) -> Result<Vec<Artifact>, GithubError> {
        let page: Artifacts = self
            .get_json(
                repository,
                "list the workflow run's artifacts",
                &format!("/repos/{repository}/actions/runs/{run_id}/artifacts?per_page=100"),
            )
            .await?;
        Ok(page.artifacts)
    }
}

/// A value in a URL's query: everything but unreserved characters escaped.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct CheckRun {
    id: u64,
}

/// An issue or pull request comment, as GitHub answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    #[serde(default)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Deserialize)]
struct WorkflowRuns {
    #[serde(default)]
    workflow_runs: Vec<WorkflowRun>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub size_in_bytes: u64,
    #[serde(default)]
    pub expired: bool,
    pub archive_download_url: String,
}

#[derive(Debug, Deserialize)]
struct Artifacts {
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_reset_headers_are_read() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "7".parse().expect("value"));
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(7)));
        let mut h = http::HeaderMap::new();
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + 30;
        h.insert("x-ratelimit-remaining", "0".parse().expect("value"));
        h.insert(
            "x-ratelimit-reset",
            reset.to_string().parse().expect("value"),
        );
        let wait = rate_limit_wait(&h).expect("a wait");
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
        h.insert("x-ratelimit-remaining", "10".parse().expect("value"));
        assert_eq!(rate_limit_wait(&h), None);
    }
}
