//! Liveness and readiness.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// The process is up and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// A readiness probe must answer even when the database hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Ready to do work: the database answers and every migration is applied.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.db.pending_migrations()).await {
        Err(_) => Err(format!(
            "the {} database did not answer within {}s",
            state.db.backend(),
            CHECK_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("the {} database: {e}", state.db.backend())),
        Ok(Ok(pending)) if !pending.is_empty() => {
            Err(format!("migrations not applied yet: {pending:?}"))
        }
        Ok(Ok(_)) => Ok(()),
    };
    let ready = database.is_ok();
    let body = json!({
        "ready": ready,
        "checks": {
            "database": database.err().unwrap_or_else(|| "ok".to_string()),
        }
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
