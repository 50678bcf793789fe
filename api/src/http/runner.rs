//! The runner's endpoint: its job, its reports (progress, results, finish,
//! failure), its logs, and the files it downloads (artifact, samples).
//!
//! A runner authenticates with its attempt's credential (a bearer token whose
//! SHA-256 `VmRequested` recorded). A report from another attempt, or after
//! the run ended, is refused with 409 and recorded as `ReportRefused`; it is
//! never applied. Every accepted report is also the heartbeat.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sp_commands::{CommandError, Envelope, Loaded};
use sp_domain::protocol::{Job, JobArtifact, JobTest, Report, ReportAck, ReportBody};
use sp_domain::{ErrorClass, Lifecycle, Rejection, RunCommand, RunId, RunState};
use sp_files::{Kind, LogName};
use sp_managers::RunnerKeys;

use super::files::download;
use super::{ApiError, AppState};

/// What the runner endpoint needs to know.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The platform's URL as runners reach it.
    pub public_url: String,
    pub max_log_bytes: u64,
    pub per_test_timeout_secs: u64,
    pub heartbeat_secs: u64,
    pub max_captured_bytes: u64,
    pub udp_datagrams_per_second: u32,
    /// Per platform, the program under test inside a zip artifact.
    pub executables: std::collections::BTreeMap<String, String>,
}

/// A runner that proved its credential: the run, its attempt, the run's state.
struct Caller {
    run: RunId,
    attempt: u32,
    loaded: Loaded<RunState>,
}

fn parse_run(run: &str) -> Result<RunId, ApiError> {
    run.parse()
        .map_err(|e: sp_domain::ids::InvalidRunId| ApiError::not_found(e.to_string()))
}

async fn authorize(state: &AppState, headers: &HeaderMap, run: &str) -> Result<Caller, ApiError> {
    let run = parse_run(run)?;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthenticated("a runner credential is required (Authorization: Bearer …)")
        })?;
    let loaded = state.runs.load(&run.stream()).await.map_err(|e| match e {
        CommandError::Store(e) => ApiError::from(e),
        other => ApiError::internal(other.to_string()),
    })?;
    let hash = RunnerKeys::hash(token.trim());
    let attempt = loaded
        .state
        .run
        .as_ref()
        .and_then(|r| r.attempt_with_credential(&hash))
        .ok_or_else(|| ApiError::unauthenticated("this credential is not one of this run's"))?;
    Ok(Caller {
        run,
        attempt,
        loaded,
    })
}

/// Why this caller may not act on the run any more, if so.
fn stale(caller: &Caller) -> Option<String> {
    let run = caller.loaded.state.run.as_ref()?;
    match &run.lifecycle {
        Lifecycle::Final(end) => Some(format!("the run is already {}", end.name())),
        Lifecycle::Active { .. } if run.attempt != caller.attempt => Some(format!(
            "attempt {} is over; the run is on attempt {}",
            caller.attempt, run.attempt
        )),
        Lifecycle::Active { .. } => None,
    }
}

/// Record a refused request, saying what was refused and why, and answer
/// 409 with the reason.
async fn refuse(state: &AppState, caller: &Caller, what: &str, reason: String) -> Response {
    let command = RunCommand::RecordRefusedReport {
        attempt: caller.attempt,
        reason: format!("{what} refused: {reason}"),
    };
    let envelope = Envelope::new(actor(caller)).correlated(caller.run.0);
    if let Err(error) = state
        .runs
        .execute(&caller.run.stream(), &command, &envelope)
        .await
    {
        tracing::warn!(%error, run = %caller.run, "cannot record a refused report");
    }
    let ack = ReportAck {
        status: "refused".into(),
        reason: Some(reason),
    };
    (StatusCode::CONFLICT, Json(ack)).into_response()
}

fn actor(caller: &Caller) -> String {
    format!("runner:{}/{}", caller.run, caller.attempt)
}

pub async fn job(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, &run).await?;
    if let Some(reason) = stale(&caller) {
        return Ok(refuse(&state, &caller, "the job", reason).await);
    }
    let Some(r) = caller.loaded.state.run.as_ref() else {
        return Err(ApiError::not_found("no such run"));
    };
    let settings = &state.runner;
    let base = format!(
        "{}/runner/v1/runs/{}",
        settings.public_url.trim_end_matches('/'),
        caller.run
    );
    let artifact = r
        .artifact
        .as_ref()
        .filter(|a| a.location != "none")
        .map(|a| JobArtifact {
            url: format!("{base}/artifact"),
            sha256: a.sha256.clone(),
            size_bytes: a.size_bytes,
            executable: settings.executables.get(r.info.platform.as_str()).cloned(),
        });
    let tests = r
        .info
        .tests
        .iter()
        .map(|t| JobTest {
            sample_url: match t.sample.location.as_deref() {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    url.to_string()
                }
                _ => format!("{base}/samples/{}", t.sample.sha256),
            },
            test: t.clone(),
        })
        .collect();
    let job = Job {
        run_id: caller.run,
        attempt: caller.attempt,
        platform: r.info.platform.to_string(),
        commit_sha: r.info.commit_sha.clone(),
        artifact,
        tests,
        per_test_timeout_secs: settings.per_test_timeout_secs,
        heartbeat_secs: settings.heartbeat_secs,
        reports_url: format!("{base}/reports"),
        logs_url: format!("{base}/logs"),
        outputs_url: Some(format!("{base}/outputs")),
        max_captured_bytes: settings.max_captured_bytes,
        udp_datagrams_per_second: settings.udp_datagrams_per_second,
    };
    Ok(Json(job).into_response())
}

/// Record a report, and count it: accepted (recorded or a duplicate) or
/// refused.
pub async fn report(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let answered = record_report(&state, &run, &headers, &body).await;
    let accepted = answered
        .as_ref()
        .is_ok_and(|response| response.status().is_success());
    state
        .metrics
        .report(if accepted { "accepted" } else { "refused" });
    answered
}

async fn record_report(
    state: &AppState,
    run: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let mut caller = authorize(state, headers, run).await?;
    let report: Report = super::body::json(body, "report")?;
    // No early refusal for a stale caller: a report resent after it was
    // applied (its answer lost) must be acknowledged as a duplicate, even
    // if it was the finish that ended the run. The domain refuses the rest.
    let what = report.body.describe();
    let attempt = caller.attempt;
    let command = match report.body {
        ReportBody::Progress {
            stage,
            message,
            done,
            total,
        } => RunCommand::RecordProgress {
            attempt,
            stage,
            message,
            done,
            total,
        },
        ReportBody::Result { result } => RunCommand::RecordSampleResult { attempt, result },
        ReportBody::Finish => RunCommand::Finish { attempt },
        ReportBody::Failure { message, retryable } => RunCommand::ReportRunnerFailure {
            attempt,
            class: if retryable {
                ErrorClass::Retryable
            } else {
                ErrorClass::Permanent
            },
            message,
        },
    };
    let envelope = Envelope::new(actor(&caller))
        .correlated(caller.run.0)
        .idempotent(format!("report:{}", report.client_id));
    let ack = |status: &str| ReportAck {
        status: status.into(),
        reason: None,
    };
    let stream = caller.run.stream();
    // Said before the state moves into the command (not copied: a run's
    // results change in place when only the command holds them).
    let stale_now = stale(&caller);
    let loaded = std::mem::take(&mut caller.loaded);
    match state
        .runs
        .execute_loaded(&stream, loaded, &command, &envelope)
        .await
    {
        Ok(done) if done.already_applied => {
            Ok((StatusCode::OK, Json(ack("duplicate"))).into_response())
        }
        Ok(_) => Ok((StatusCode::ACCEPTED, Json(ack("recorded"))).into_response()),
        Err(CommandError::Rejected(
            r @ (Rejection::StaleAttempt { .. } | Rejection::RunFinal { .. }),
        )) => {
            let reason = stale_now.unwrap_or_else(|| r.to_string());
            Ok(refuse(state, &caller, &what, reason).await)
        }
        Err(CommandError::Rejected(r)) => Err(ApiError::conflict(r.to_string())),
        Err(e @ CommandError::Contended { .. }) => {
            Err(ApiError::unavailable(format!("{e}; send the report again")))
        }
        Err(CommandError::Store(e)) if e.is_transient() => {
            tracing::warn!(error = %e, run = %caller.run, "a report could not be recorded; the runner is asked to resend it");
            Err(ApiError::unavailable(format!("{e}; send the report again")))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

pub async fn upload_log(
    State(state): State<Arc<AppState>>,
    Path((run, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Logs of any attempt of the run are kept: a failed attempt's log is
    // what explains it.
    let caller = authorize(&state, &headers, &run).await?;
    if !LogName::valid(&name) {
        return Err(ApiError::invalid(
            "a log name is 1 to 64 letters, digits, dots, dashes or underscores",
        ));
    }
    let log = LogName {
        run: caller.run.0,
        attempt: caller.attempt,
        name,
    };
    let size = state
        .files
        .put_log(&log, state.runner.max_log_bytes, body.into_data_stream())
        .await
        .map_err(ApiError::from)?;
    let name = log.name;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "stored": name, "bytes": size })),
    )
        .into_response())
}

pub async fn artifact(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, &run).await?;
    let sha256 = caller
        .loaded
        .state
        .run
        .as_ref()
        .and_then(|r| r.artifact.as_ref())
        .filter(|a| a.location != "none")
        .map(|a| a.sha256.clone())
        .ok_or_else(|| ApiError::not_found("this run has no artifact"))?;
    let content = state
        .files
        .content(Kind::Artifact, &sha256)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found("the artifact is not in the platform's store"))?;
    Ok(download(content, &sha256))
}

pub async fn sample(
    State(state): State<Arc<AppState>>,
    Path((run, sha256)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authorize(&state, &headers, &run).await?;
    // Only samples in the run's own scope are served.
    let in_scope = caller
        .loaded
        .state
        .run
        .as_ref()
        .is_some_and(|r| r.info.tests.iter().any(|t| t.sample.sha256 == sha256));
    if !in_scope {
        return Err(ApiError::not_found(format!(
            "no sample {sha256} in this run's scope"
        )));
    }
    let content = state
        .files
        .content(Kind::Sample, &sha256)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!("sample {sha256} is not in the platform's store"))
        })?;
    Ok(download(content, &sha256))
}

/// `PUT …/outputs/{sha256}`: an output the runner produced that is not the
/// approved one, kept so a maintainer can compare it and accept it.
pub async fn upload_output(
    State(state): State<Arc<AppState>>,
    Path((run, sha256)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &run).await?;
    let stored = state
        .files
        .put(
            Kind::Output,
            Some(&sha256),
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
    Ok(status.into_response())
}
