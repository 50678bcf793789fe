//! `POST /webhooks/github`: verify, parse, record, answer. No outbound call is
//! made here; the answer comes after every resulting event is appended.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sp_commands::DeliveryInfo;
use sp_domain::delivery::DeliveryOutcome;

use super::{ApiError, AppState};
use crate::github::{payload, signature};

/// GitHub's own limit on a delivery's size.
pub const MAX_DELIVERY_BYTES: usize = 25 * 1024 * 1024;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Delivery ids become stream names: GitHub sends GUIDs.
fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Answer a delivery, and count it by its answer.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let answered = answer(&state, &headers, &body).await;
    state.metrics.delivery(match &answered {
        Ok((_, body)) => match body["status"].as_str() {
            Some("queued") => "queued",
            Some("cancelled") => "cancelled",
            Some("ignored") => "ignored",
            Some("duplicate") => "duplicate",
            Some("pong") => "pong",
            Some("build recorded") => "build_recorded",
            _ => "other",
        },
        Err(e) if super::error::status(e.0.kind).is_client_error() => "refused",
        Err(_) => "failed",
    });
    answered
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(secret) = state.webhook_secret.as_deref() else {
        return Err(ApiError::unavailable(
            "webhook deliveries are refused: no secret is configured (set SP_GITHUB_WEBHOOK_SECRET)",
        ));
    };
    signature::verify(
        secret.as_bytes(),
        header(headers, "x-hub-signature-256"),
        body,
    )
    .map_err(|e| ApiError::unauthenticated(e.to_string()))?;

    let id = header(headers, "x-github-delivery")
        .ok_or_else(|| ApiError::invalid("missing X-GitHub-Delivery header"))?;
    if !valid_delivery_id(id) {
        return Err(ApiError::invalid(
            "X-GitHub-Delivery must be 1 to 100 letters, digits or dashes",
        ));
    }
    let event = header(headers, "x-github-event")
        .ok_or_else(|| ApiError::invalid("missing X-GitHub-Event header"))?;
    let envelope = payload::envelope(event, body).map_err(|e| ApiError::invalid(e.to_string()))?;
    let parsed = payload::parse_event(event, body).map_err(|e| ApiError::invalid(e.to_string()))?;
    let info = DeliveryInfo {
        id: id.to_string(),
        event: event.to_string(),
        action: envelope.action.clone(),
        repository: envelope.repository(),
        sender: envelope.sender(),
    };
    let receipt = state
        .intake
        .handle(&info, &parsed)
        .await
        .map_err(ApiError::from)?;
    if receipt.duplicate {
        return Ok((
            StatusCode::OK,
            Json(json!({ "status": "duplicate", "delivery": id, "outcome": receipt.outcome })),
        ));
    }
    let (status, body) = match receipt.outcome {
        DeliveryOutcome::Pong => (StatusCode::OK, json!({ "status": "pong" })),
        DeliveryOutcome::Queued { runs, superseded } => (
            StatusCode::ACCEPTED,
            json!({ "status": "queued", "runs": runs, "superseded": superseded }),
        ),
        DeliveryOutcome::Cancelled { runs } => (
            StatusCode::ACCEPTED,
            json!({ "status": "cancelled", "runs": runs }),
        ),
        DeliveryOutcome::BuildRecorded => {
            (StatusCode::ACCEPTED, json!({ "status": "build recorded" }))
        }
        DeliveryOutcome::Ignored { reason } => {
            tracing::info!(delivery = id, event, %reason, "delivery ignored");
            (
                StatusCode::ACCEPTED,
                json!({ "status": "ignored", "reason": reason }),
            )
        }
    };
    Ok((status, Json(body)))
}
