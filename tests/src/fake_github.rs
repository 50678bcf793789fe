//! A fake GitHub on 127.0.0.1: the REST endpoints the platform uses, in
//! GitHub's shapes (workflow runs, artifacts with a redirecting download,
//! commit statuses with rate-limit headers, issue comments with GitHub's
//! pagination, length limit and 404/422 answers; check runs with their
//! 50-annotation limit, only for an App's installation token; a GitHub App's
//! installation found and its token minted with a JWT checked against the
//! App's public key), with failures on demand.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How an artifact download behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    Whole,
    /// Claims more bytes than it sends, then closes.
    Truncated,
    /// Never answers.
    Hang,
}

/// A canned failure for the next status request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Status(u16),
    /// 403 with `x-ratelimit-remaining: 0` and `retry-after`.
    RateLimited {
        retry_after_secs: u64,
    },
    Hang,
}

#[derive(Debug, Default)]
struct Inner {
    /// Workflow runs: (repository, head SHA, run).
    runs: Vec<(String, String, Value)>,
    /// Repositories `GET /repos/{owner}/{repo}` knows, by full name.
    repositories: HashMap<String, Value>,
    /// Where artifact downloads are redirected: another host, as GitHub's
    /// blob storage is.
    blob_url: String,
    artifacts: HashMap<u64, Vec<Value>>,
    blobs: HashMap<u64, Vec<u8>>,
    blob_mode: Option<Blob>,
    runs_failure: Option<u16>,
    /// Failures for the next status requests, by state (`*`: any state).
    status_failures: HashMap<String, VecDeque<Failure>>,
    /// (repository, sha, body) of every status accepted.
    statuses: Vec<(String, String, Value)>,
    status_attempts: usize,
    /// Every comment: (repository, issue number, comment).
    comments: Vec<(String, u64, Value)>,
    next_comment_id: u64,
    /// Failures for the next comment writes (POST and PATCH).
    comment_failures: VecDeque<Failure>,
    /// How many comments were posted and edited.
    comment_posts: usize,
    comment_edits: usize,
    /// The App whose JWTs are accepted: its id and public key (PEM).
    app: Option<(u64, Vec<u8>)>,
    /// Installation tokens minted.
    installation_tokens: Vec<String>,
    /// Every check run: (repository, check run with all its annotations).
    check_runs: Vec<(String, Value)>,
    next_check_run_id: u64,
    /// Check run requests (POST and PATCH), in order.
    check_run_requests: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct FakeGithub {
    pub url: String,
    /// Its OAuth pages and `/user`, for signing in.
    pub oauth: crate::fake_oauth::FakeOAuth,
    inner: Arc<Mutex<Inner>>,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let oauth = crate::fake_oauth::FakeOAuth::default();
        let app = Router::new()
            .route("/repos/{owner}/{repo}", get(repository))
            .route("/repos/{owner}/{repo}/actions/runs", get(list_runs))
            .route(
                "/repos/{owner}/{repo}/actions/runs/{id}/artifacts",
                get(list_artifacts),
            )
            .route(
                "/repos/{owner}/{repo}/actions/artifacts/{id}/zip",
                get(artifact_zip),
            )
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(list_comments).post(create_comment),
            )
            .route(
                "/repos/{owner}/{repo}/issues/comments/{id}",
                patch(update_comment),
            )
            .route("/repos/{owner}/{repo}/installation", get(installation))
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route("/repos/{owner}/{repo}/check-runs", post(create_check_run))
            .route(
                "/repos/{owner}/{repo}/check-runs/{id}",
                patch(update_check_run),
            )
            .route(
                "/repos/{owner}/{repo}/commits/{sha}/check-runs",
                get(list_check_runs),
            )
            .with_state(inner.clone())
            .merge(oauth.routes());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        // Blob storage: another host, which takes a signed URL and refuses
        // a request that carries GitHub's token.
        let blobs = Router::new()
            .route("/blobs/{id}", get(blob))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let blob_url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, blobs).await;
        });
        inner.lock().unwrap_or_else(|p| p.into_inner()).blob_url = blob_url;
        FakeGithub { url, oauth, inner }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A repository, as `GET /repos/{owner}/{repo}` shows it: its owner is
    /// the first part of its name; a fork names its parent (and source).
    pub fn add_repository(&self, full_name: &str, fork_of: Option<&str>) {
        let (owner, name) = full_name.split_once('/').expect("owner/name");
        let mut repo = json!({
            "id": self.lock().repositories.len() + 1000,
            "name": name,
            "full_name": full_name,
            "owner": { "login": owner, "type": "User" },
            "private": false,
            "fork": fork_of.is_some(),
            "default_branch": "master",
        });
        if let Some(parent) = fork_of {
            let (parent_owner, parent_name) = parent.split_once('/').expect("owner/name");
            let parent = json!({
                "full_name": parent,
                "name": parent_name,
                "owner": { "login": parent_owner, "type": "Organization" },
                "fork": false,
            });
            repo["parent"] = parent.clone();
            repo["source"] = parent;
        }
        self.lock()
            .repositories
            .insert(full_name.to_ascii_lowercase(), repo);
    }

    /// A workflow run of commit `head_sha` of `repository`.
    pub fn add_run(
        &self,
        repository: &str,
        head_sha: &str,
        id: u64,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let mut i = self.lock();
        i.runs.retain(|(_, _, r)| r["id"] != id);
        i.runs.push((
            repository.to_string(),
            head_sha.to_string(),
            json!({
                "id": id,
                "name": "Build CCExtractor on Linux",
                "head_sha": head_sha,
                "status": status,
                "conclusion": conclusion,
                "updated_at": chrono::Utc::now().to_rfc3339(),
            }),
        ));
    }

    /// An artifact of a run, downloadable as `bytes`.
    pub fn add_artifact(
        &self,
        run_id: u64,
        artifact_id: u64,
        name: &str,
        bytes: Vec<u8>,
        expired: bool,
    ) {
        let url = format!("{}/repos/o/r/actions/artifacts/{artifact_id}/zip", self.url);
        let mut i = self.lock();
        i.artifacts.entry(run_id).or_default().push(json!({
            "id": artifact_id,
            "name": name,
            "size_in_bytes": bytes.len(),
            "expired": expired,
            "archive_download_url": url,
        }));
        i.blobs.insert(artifact_id, bytes);
    }

    pub fn set_blob_mode(&self, mode: Blob) {
        self.lock().blob_mode = Some(mode);
    }

    pub fn fail_runs_listing(&self, status: Option<u16>) {
        self.lock().runs_failure = status;
    }

    /// Answer the next status requests with these failures, in order.
    pub fn fail_statuses(&self, failures: Vec<Failure>) {
        self.fail_statuses_for("*", failures);
    }

    /// Answer the next requests for `state` with these failures, in order.
    pub fn fail_statuses_for(&self, state: &str, failures: Vec<Failure>) {
        self.lock()
            .status_failures
            .insert(state.to_string(), failures.into());
    }

    /// Statuses accepted: (repository, sha, body).
    pub fn statuses(&self) -> Vec<(String, String, Value)> {
        self.lock().statuses.clone()
    }

    pub fn status_attempts(&self) -> usize {
        self.lock().status_attempts
    }

    /// A comment someone (`login`) wrote on issue or pull request `number`;
    /// its id.
    pub fn add_comment(&self, repository: &str, number: u64, login: &str, body: &str) -> u64 {
        let mut i = self.lock();
        let id = next_comment_id(&mut i);
        let comment = comment_json(&self.url, repository, number, id, login, body);
        i.comments.push((repository.to_string(), number, comment));
        id
    }

    /// The comments of issue or pull request `number`, oldest first.
    pub fn comments(&self, repository: &str, number: u64) -> Vec<Value> {
        self.lock()
            .comments
            .iter()
            .filter(|(r, n, _)| r.eq_ignore_ascii_case(repository) && *n == number)
            .map(|(_, _, c)| c.clone())
            .collect()
    }

    /// How many comments were posted, and how many edited.
    pub fn comment_writes(&self) -> (usize, usize) {
        let i = self.lock();
        (i.comment_posts, i.comment_edits)
    }

    /// Answer the next comment writes with these failures, in order.
    pub fn fail_comments(&self, failures: Vec<Failure>) {
        self.lock().comment_failures = failures.into();
    }

    /// Accept the JWTs of the tests' App ([`crate::TEST_APP_ID`], signed by
    /// `tests/data/github-app-test-key.pem`), installed on every repository.
    pub fn install_test_app(&self) {
        let public = std::fs::read(crate::test_data("github-app-test-key.pub.pem"))
            .expect("the test App's public key");
        self.lock().app = Some((crate::TEST_APP_ID, public));
    }

    /// The check runs of `repository`, with their annotations.
    pub fn check_runs(&self, repository: &str) -> Vec<Value> {
        self.lock()
            .check_runs
            .iter()
            .filter(|(r, _)| r.eq_ignore_ascii_case(repository))
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Every check run request body accepted, in order.
    pub fn check_run_requests(&self) -> Vec<Value> {
        self.lock().check_run_requests.clone()
    }
}

/// The installation GitHub answers for every repository.
pub const INSTALLATION_ID: u64 = 4_242_424;

/// An `Authorization: Bearer` JWT of the installed App, checked as GitHub
/// does: RS256, signed by the App's key, issued by its id, not expired.
fn app_jwt_problem(i: &Inner, headers: &HeaderMap) -> Option<Response> {
    let Some((app_id, public_key)) = &i.app else {
        return Some(github_error(401, "A JSON web token could not be decoded"));
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Some(github_error(401, "Requires authentication"));
    };
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(public_key) else {
        return Some(github_error(500, "bad test key"));
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // `iss` is the App id as a number (as octocrab sends it) or a string,
    // which the library's own check would not take: it is checked below.
    validation.set_required_spec_claims(&["exp"]);
    validation.validate_aud = false;
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: Value,
        #[allow(dead_code)]
        iat: u64,
    }
    match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
        Ok(data) => {
            let iss = match &data.claims.iss {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (iss != app_id.to_string())
                .then(|| github_error(401, "'Issuer' claim ('iss') must be the App id"))
        }
        Err(e) => Some(github_error(
            401,
            &format!("A JSON web token could not be decoded: {e}"),
        )),
    }
}

async fn installation(
    State(inner): Shared,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let i = lock(&inner);
    if let Some(refused) = app_jwt_problem(&i, &headers) {
        return refused;
    }
    let app_id = i.app.as_ref().map(|(id, _)| *id).unwrap_or_default();
    axum::Json(json!({
        "id": INSTALLATION_ID,
        "app_id": app_id,
        "target_type": "Organization",
        "account": { "login": owner, "id": 1 },
        "repository_selection": "all",
        "access_tokens_url": format!("/app/installations/{INSTALLATION_ID}/access_tokens"),
        "repositories_url": "/installation/repositories",
        "html_url": format!("https://github.com/organizations/{owner}/settings/installations/{INSTALLATION_ID}"),
        "permissions": { "checks": "write", "statuses": "write", "pull_requests": "write", "issues": "write", "actions": "read" },
        "events": ["push", "pull_request", "check_run", "check_suite", "workflow_run"],
        "created_at": "2026-11-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z",
        "single_file_name": null,
        "repo": repo
    }))
    .into_response()
}

async fn access_token(State(inner): Shared, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    let mut i = lock(&inner);
    if let Some(refused) = app_jwt_problem(&i, &headers) {
        return refused;
    }
    if id != INSTALLATION_ID {
        return github_error(404, "Not Found");
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    i.installation_tokens.push(token.clone());
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "token": token,
            "expires_at": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "permissions": { "checks": "write", "statuses": "write", "issues": "write", "pull_requests": "write", "actions": "read" },
            "repository_selection": "all"
        })),
    )
        .into_response()
}

/// Check runs take only an App's installation token, as on GitHub.
fn installation_token_problem(i: &Inner, headers: &HeaderMap) -> Option<Response> {
    let token = bearer(headers);
    match token {
        None => Some(github_error(401, "Requires authentication")),
        Some(t) if i.installation_tokens.iter().any(|k| k == t) => None,
        Some(_) => Some(github_error(
            403,
            "Resource not accessible by personal access token",
        )),
    }
}

/// GitHub's 422 for a check run request it will not take, if any.
fn invalid_check_run(body: &Value, creating: bool) -> Option<Response> {
    let refuse = |message: &str| {
        Some(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({
                    "message": message,
                    "documentation_url": "https://docs.github.com/rest/checks/runs"
                })),
            )
                .into_response(),
        )
    };
    if creating && (body["name"].as_str().is_none() || body["head_sha"].as_str().is_none()) {
        return refuse("Invalid request.\n\n\"name\", \"head_sha\" weren't supplied.");
    }
    if let Some(status) = body.get("status")
        && !matches!(
            status.as_str(),
            Some("queued" | "in_progress" | "completed")
        )
    {
        return refuse("Invalid request.\n\nstatus is not included in the list");
    }
    if body["status"] == "completed" && body["conclusion"].as_str().is_none() {
        return refuse("Invalid request.\n\n\"conclusion\" wasn't supplied.");
    }
    let annotations = body["output"]["annotations"].as_array();
    if annotations.is_some_and(|a| a.len() > 50) {
        return refuse("Invalid request.\n\nOnly 50 annotations may be sent per request.");
    }
    if body.get("output").is_some()
        && (body["output"]["title"].as_str().is_none()
            || body["output"]["summary"].as_str().is_none())
    {
        return refuse("Invalid request.\n\n\"title\", \"summary\" weren't supplied.");
    }
    for a in annotations.into_iter().flatten() {
        let complete = a["path"].is_string()
            && a["start_line"].is_u64()
            && a["end_line"].is_u64()
            && matches!(
                a["annotation_level"].as_str(),
                Some("notice" | "warning" | "failure")
            )
            && a["message"].is_string();
        if !complete {
            return refuse(
                "Invalid request.\n\nAn annotation needs path, start_line, end_line, annotation_level and message.",
            );
        }
    }
    None
}

/// Apply a check run request to the stored check run.
fn merge_check_run(run: &mut Value, body: &Value) {
    for field in [
        "name",
        "status",
        "conclusion",
        "details_url",
        "external_id",
        "completed_at",
    ] {
        if let Some(v) = body.get(field) {
            run[field] = v.clone();
        }
    }
    if body.get("conclusion").is_some() {
        run["status"] = json!("completed");
    }
    if let Some(output) = body.get("output") {
        run["output"]["title"] = output["title"].clone();
        run["output"]["summary"] = output["summary"].clone();
        let mut all = run["output"]["annotations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        all.extend(
            output["annotations"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        run["output"]["annotations_count"] = json!(all.len());
        run["output"]["annotations"] = Value::Array(all);
    }
}

async fn create_check_run(
    State(inner): Shared,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut i = lock(&inner);
    if let Some(refused) = installation_token_problem(&i, &headers) {
        return refused;
    }
    if let Some(refused) = invalid_check_run(&body, true) {
        return refused;
    }
    i.next_check_run_id = i.next_check_run_id.max(7_000_000) + 1;
    let mut run = json!({
        "id": i.next_check_run_id,
        "head_sha": body["head_sha"],
        "status": "queued",
        "conclusion": null,
        "output": { "title": null, "summary": null, "annotations": [], "annotations_count": 0 },
        "app": { "id": i.app.as_ref().map(|(id, _)| *id) },
    });
    merge_check_run(&mut run, &body);
    i.check_run_requests.push(body);
    i.check_runs.push((format!("{owner}/{repo}"), run.clone()));
    (StatusCode::CREATED, axum::Json(run)).into_response()
}

async fn update_check_run(
    State(inner): Shared,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut i = lock(&inner);
    if let Some(refused) = installation_token_problem(&i, &headers) {
        return refused;
    }
    if let Some(refused) = invalid_check_run(&body, false) {
        return refused;
    }
    let repository = format!("{owner}/{repo}");
    let Some((_, run)) = i
        .check_runs
        .iter_mut()
        .find(|(r, c)| r.eq_ignore_ascii_case(&repository) && c["id"] == id)
    else {
        return github_error(404, "Not Found");
    };
    merge_check_run(run, &body);
    let run = run.clone();
    i.check_run_requests.push(body);
    axum::Json(run).into_response()
}

async fn list_check_runs(
    State(inner): Shared,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let i = lock(&inner);
    if let Some(refused) = installation_token_problem(&i, &headers) {
        return refused;
    }
    let repository = format!("{owner}/{repo}");
    let runs: Vec<Value> = i
        .check_runs
        .iter()
        .filter(|(r, c)| {
            r.eq_ignore_ascii_case(&repository)
                && c["head_sha"] == sha.as_str()
                && query
                    .get("check_name")
                    .is_none_or(|n| c["name"] == n.as_str())
        })
        .map(|(_, c)| c.clone())
        .collect();
    axum::Json(json!({ "total_count": runs.len(), "check_runs": runs })).into_response()
}

fn next_comment_id(i: &mut Inner) -> u64 {
    i.next_comment_id = i.next_comment_id.max(1_000_000) + 1;
    i.next_comment_id
}

/// An issue comment as GitHub's REST API shows it.
fn comment_json(
    base: &str,
    repository: &str,
    number: u64,
    id: u64,
    login: &str,
    body: &str,
) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "id": id,
        "node_id": format!("IC_kwDO{id}"),
        "url": format!("{base}/repos/{repository}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{repository}/pull/{number}#issuecomment-{id}"),
        "issue_url": format!("{base}/repos/{repository}/issues/{number}"),
        "body": body,
        "user": { "login": login, "id": 99, "type": if login.ends_with("[bot]") { "Bot" } else { "User" } },
        "created_at": now,
        "updated_at": now,
        "author_association": "NONE"
    })
}

/// GitHub's 422 for a comment body it will not take.
fn invalid_body(body: &Value) -> Option<Response> {
    let text = body["body"].as_str();
    let error = match text {
        None => json!({ "resource": "IssueComment", "code": "missing_field", "field": "body" }),
        Some(t) if t.trim().is_empty() => {
            json!({ "resource": "IssueComment", "code": "missing_field", "field": "body" })
        }
        Some(t) if t.chars().count() > 65_536 => json!({
            "resource": "IssueComment", "code": "custom", "field": "body",
            "message": "body is too long (maximum is 65536 characters)"
        }),
        Some(_) => return None,
    };
    Some(
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "message": "Validation Failed",
                "errors": [error],
                "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
            })),
        )
            .into_response(),
    )
}

fn authorized(headers: &HeaderMap) -> bool {
    bearer(headers).is_some()
}

/// The token of an `Authorization: Bearer …` (or GitHub's older `token …`).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
}

/// A canned failure's answer, or `None` to go on.
async fn canned(failure: Option<Failure>) -> Option<Response> {
    match failure? {
        Failure::Status(code) => Some(github_error(code, "Server Error")),
        Failure::RateLimited { retry_after_secs } => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                + retry_after_secs;
            Some(
                (
                    StatusCode::FORBIDDEN,
                    [
                        ("retry-after", retry_after_secs.to_string()),
                        ("x-ratelimit-remaining", "0".to_string()),
                        ("x-ratelimit-reset", reset.to_string()),
                    ],
                    axum::Json(json!({ "message": "API rate limit exceeded" })),
                )
                    .into_response(),
            )
        }
        Failure::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Some(StatusCode::GATEWAY_TIMEOUT.into_response())
        }
    }
}

/// What GitHub answers a comment write before looking at the comment: no
/// token, a canned failure, or a body it will not take.
async fn comment_write_refused(
    inner: &Arc<Mutex<Inner>>,
    headers: &HeaderMap,
    body: &Value,
) -> Option<Response> {
    if !authorized(headers) {
        return Some(github_error(401, "Requires authentication"));
    }
    let failure = lock(inner).comment_failures.pop_front();
    if let Some(answer) = canned(failure).await {
        return Some(answer);
    }
    invalid_body(body)
}

async fn list_comments(
    State(inner): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return github_error(401, "Requires authentication");
    }
    // GitHub: per_page at most 100 (default 30), pages from 1.
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let repository = format!("{owner}/{repo}");
    let all: Vec<Value> = lock(&inner)
        .comments
        .iter()
        .filter(|(r, n, _)| r.eq_ignore_ascii_case(&repository) && *n == number)
        .map(|(_, _, c)| c.clone())
        .collect();
    let page: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    axum::Json(Value::Array(page)).into_response()
}

async fn create_comment(
    State(inner): Shared,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(refused) = comment_write_refused(&inner, &headers, &body).await {
        return refused;
    }
    let repository = format!("{owner}/{repo}");
    let mut i = lock(&inner);
    let id = next_comment_id(&mut i);
    let base = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let comment = comment_json(
        &base,
        &repository,
        number,
        id,
        "sample-platform[bot]",
        body["body"].as_str().unwrap_or_default(),
    );
    i.comments.push((repository, number, comment.clone()));
    i.comment_posts += 1;
    (StatusCode::CREATED, axum::Json(comment)).into_response()
}

async fn update_comment(
    State(inner): Shared,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(refused) = comment_write_refused(&inner, &headers, &body).await {
        return refused;
    }
    let repository = format!("{owner}/{repo}");
    let mut i = lock(&inner);
    let Some((_, _, comment)) = i
        .comments
        .iter_mut()
        .find(|(r, _, c)| r.eq_ignore_ascii_case(&repository) && c["id"] == id)
    else {
        return github_error(404, "Not Found");
    };
    comment["body"] = body["body"].clone();
    comment["updated_at"] = Value::String(chrono::Utc::now().to_rfc3339());
    let comment = comment.clone();
    i.comment_edits += 1;
    axum::Json(comment).into_response()
}

type Shared = State<Arc<Mutex<Inner>>>;

fn lock(inner: &Arc<Mutex<Inner>>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn github_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        axum::Json(
            json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
        ),
    )
        .into_response()
}

/// A repository, found without regard to case as GitHub does.
async fn repository(State(inner): Shared, Path((owner, repo)): Path<(String, String)>) -> Response {
    let key = format!("{owner}/{repo}").to_ascii_lowercase();
    match lock(&inner).repositories.get(&key) {
        Some(repo) => axum::Json(repo.clone()).into_response(),
        None => github_error(404, "Not Found"),
    }
}

/// The repository's workflow runs, filtered by `head_sha` as GitHub does.
async fn list_runs(
    State(inner): Shared,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let i = lock(&inner);
    if let Some(status) = i.runs_failure {
        return github_error(status, "Server Error");
    }
    let repository = format!("{owner}/{repo}");
    let runs: Vec<&Value> = i
        .runs
        .iter()
        .filter(|(r, sha, _)| {
            r.eq_ignore_ascii_case(&repository)
                && query.get("head_sha").is_none_or(|wanted| wanted == sha)
        })
        .map(|(_, _, run)| run)
        .collect();
    axum::Json(json!({ "total_count": runs.len(), "workflow_runs": runs })).into_response()
}

async fn list_artifacts(
    State(inner): Shared,
    Path((_, _, id)): Path<(String, String, u64)>,
) -> Response {
    let i = lock(&inner);
    let artifacts = i.artifacts.get(&id).cloned().unwrap_or_default();
    axum::Json(json!({ "total_count": artifacts.len(), "artifacts": artifacts })).into_response()
}

/// GitHub answers with a redirect to short-lived blob storage.
async fn artifact_zip(
    State(inner): Shared,
    Path((_, _, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    if headers.get("authorization").is_none() {
        return github_error(401, "Requires authentication");
    }
    let (known, blob_url) = {
        let i = lock(&inner);
        (i.blobs.contains_key(&id), i.blob_url.clone())
    };
    if !known {
        return github_error(404, "Not Found");
    }
    let location = format!("{blob_url}/blobs/{id}?sig=signed-{id}");
    (StatusCode::FOUND, [("location", location)]).into_response()
}

/// Blob storage: the signature in the URL is the authorization, and a
/// request that also carries a token is refused, as Azure's storage does.
async fn blob(
    State(inner): Shared,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if headers.get("authorization").is_some() {
        return (
            StatusCode::BAD_REQUEST,
            "<Error><Code>InvalidAuthenticationInfo</Code><Message>Authentication information is not given in the correct format.</Message></Error>",
        )
            .into_response();
    }
    if query.get("sig") != Some(&format!("signed-{id}")) {
        return (
            StatusCode::FORBIDDEN,
            "<Error><Code>AuthenticationFailed</Code></Error>",
        )
            .into_response();
    }
    let (bytes, mode) = {
        let i = lock(&inner);
        (
            i.blobs.get(&id).cloned(),
            i.blob_mode.unwrap_or(Blob::Whole),
        )
    };
    let Some(bytes) = bytes else {
        return github_error(404, "Not Found");
    };
    match mode {
        Blob::Whole => bytes.into_response(),
        Blob::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Blob::Truncated => {
            let half = bytes[..bytes.len() / 2].to_vec();
            let stream = futures_util::stream::iter(vec![
                Ok::<_, std::io::Error>(half),
                Err(std::io::Error::other("connection reset")),
            ]);
            Response::builder()
                .header("content-length", bytes.len())
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

async fn create_status(
    State(inner): Shared,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let failure = {
        let mut i = lock(&inner);
        i.status_attempts += 1;
        let state = body["state"].as_str().unwrap_or_default().to_string();
        let for_state = i
            .status_failures
            .get_mut(&state)
            .and_then(VecDeque::pop_front);
        for_state.or_else(|| i.status_failures.get_mut("*").and_then(VecDeque::pop_front))
    };
    if let Some(answer) = canned(failure).await {
        return answer;
    }
    let valid = matches!(
        body["state"].as_str(),
        Some("pending" | "success" | "failure" | "error")
    );
    if !valid {
        return github_error(422, "Validation Failed");
    }
    lock(&inner)
        .statuses
        .push((format!("{owner}/{repo}"), sha.clone(), body.clone()));
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": 1, "state": body["state"], "context": body["context"] })),
    )
        .into_response()
}

/// A zip archive holding one executable file.
pub fn zip_with(name: &str, contents: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(contents).expect("zip write");
        zip.finish().expect("zip finish");
    }
    buffer.into_inner()
}
