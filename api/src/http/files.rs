//! Files for people and the command line: sample uploads into the catalogue,
//! approved outputs' content, and downloads of samples, outputs and runners'
//! logs. Uploads need a token with the catalogue scope; downloads the read
//! scope (or none, when anonymous reading is on).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sp_domain::catalogue::{Sample, is_sha256};

use super::login::{Csrf, caller};
use super::{ApiError, AppState};
use crate::auth::{Caller, Scope};
use sp_commands::catalogue::AddedSample;
use sp_files::{Content, Kind, LogName};

/// The caller, if it may do what `scope` allows.
pub(super) async fn require(
    state: &AppState,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<Caller, ApiError> {
    // Reading is a GET; anything more changes something.
    let csrf = if scope == Scope::Read {
        Csrf::NotNeeded
    } else {
        Csrf::Required
    };
    let caller = caller(state, headers, csrf).await?;
    caller.authorize(scope, state.anonymous_read)?;
    Ok(caller)
}

/// `POST /api/samples?name=clip.ts&tags=a,b`: the body is the sample.
/// 201 with the sample; 409 when its content is in the catalogue already
/// (under the name it has there).
pub async fn add_sample(
    State(state): State<Arc<AppState>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = require(&state, &headers, Scope::Catalogue).await?;
    // Refused before a byte of the body is stored; `add_sample` checks the
    // name itself and tidies the tags.
    let name = query
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("name the sample: ?name=FILE"))?;
    let tags: Vec<String> = query
        .get("tags")
        .map(|t| t.split(',').map(String::from).collect())
        .unwrap_or_default();
    let added = state
        .catalogues
        .add_sample(
            &state.files,
            &caller.actor,
            name,
            tags,
            state.max_sample_bytes,
            body.into_data_stream(),
        )
        .await
        .map_err(ApiError::from)?;
    Ok(match added {
        AddedSample::New(sample) => {
            (StatusCode::CREATED, Json(sample_json(&sample, false))).into_response()
        }
        AddedSample::Duplicate { existing, message } => {
            let mut body = sample_json(&existing, true);
            body["error"] = json!(message);
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
    })
}

fn sample_json(s: &Sample, duplicate: bool) -> serde_json::Value {
    json!({
        "sha256": s.sha256,
        "name": s.name,
        "extension": s.extension,
        "size_bytes": s.size_bytes,
        "tags": s.tags,
        "duplicate": duplicate,
    })
}

/// `POST /api/outputs`: an approved output's content, kept so diffs can
/// show it. Answers its SHA-256.
pub async fn add_output(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require(&state, &headers, Scope::Catalogue).await?;
    let stored = state
        .files
        .put(
            Kind::Output,
            None,
            state.runner.max_log_bytes,
            body.into_data_stream(),
        )
        .await
        .map_err(ApiError::from)?;
    let status = if stored.existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({ "sha256": stored.sha256, "size_bytes": stored.size_bytes })),
    )
        .into_response())
}

/// A stored file as a download named `filename`.
pub(super) fn download(content: Content, filename: &str) -> Response {
    let size = content.size_bytes;
    let mut response = Body::from_stream(content.stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    let cleaned: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{cleaned}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

async fn stored(state: &AppState, kind: Kind, sha256: &str) -> Result<Response, ApiError> {
    if !is_sha256(sha256) {
        return Err(ApiError::invalid(format!("{sha256:?} is not a SHA-256")));
    }
    let content = state
        .files
        .content(kind, sha256)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no file {sha256} in the store")))?;
    Ok(download(content, sha256))
}

/// `GET /files/samples/{sha256}`.
pub async fn sample(
    State(state): State<Arc<AppState>>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    stored(&state, Kind::Sample, &sha256).await
}

/// `GET /files/outputs/{sha256}`.
pub async fn output(
    State(state): State<Arc<AppState>>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    stored(&state, Kind::Output, &sha256).await
}

/// `GET /files/logs/{run}/{attempt}/{name}`: a runner's log or a test's stderr.
pub async fn log(
    State(state): State<Arc<AppState>>,
    Path((run, attempt, name)): Path<(String, u32, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let run = uuid::Uuid::parse_str(&run)
        .map_err(|_| ApiError::not_found(format!("{run:?} is not a run id")))?;
    if !LogName::valid(&name) {
        return Err(ApiError::not_found(format!("no log {name:?}")));
    }
    let log = LogName { run, attempt, name };
    let content = state
        .files
        .log_content(&log)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!("no log {:?} for attempt {attempt}", log.name))
        })?;
    let mut response = download(content, &log.name);
    // Logs are text: let a browser show them.
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().remove(header::CONTENT_DISPOSITION);
    Ok(response)
}
