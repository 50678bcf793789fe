//! Liveness and readiness.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::AppState;

/// The process is up and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// A readiness probe must answer even when the database hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Ready to do work: the database answers, every migration is applied, and no
/// read model is stuck on an event. Each read model's lag is reported, and
/// the store's counts of rows read and events written.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let mut ready = true;
    let mut checks = Map::new();
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
    if let Err(reason) = &database {
        ready = false;
        checks.insert("database".into(), json!(reason));
    } else {
        checks.insert("database".into(), json!("ok"));
    }

    let head = match tokio::time::timeout(CHECK_TIMEOUT, state.db.store.head_position()).await {
        Ok(Ok(head)) => Some(head),
        _ => None,
    };
    for (name, status) in &state.projections {
        let status = status.borrow().clone();
        let lag = head.map(|h| (h - status.checkpoint.position).max(0));
        // Applying here, or following the replica that holds the lease.
        let role = if status.following {
            "following"
        } else {
            "applying"
        };
        let value = match &status.failing {
            Some((position, error)) => {
                ready = false;
                json!({ "ok": false, "failing_at": position, "error": error, "behind": lag, "role": role })
            }
            None => json!({ "ok": true, "behind": lag, "role": role }),
        };
        checks.insert(format!("projection:{name}"), value);
    }
    // VMs the platform gave up deleting: the replica can still work, so this
    // does not make it unready, but a person must act, and here is what on.
    if let Ok(Ok(abandoned)) = tokio::time::timeout(
        CHECK_TIMEOUT,
        sp_projections::queries::vms_with_status(&state.db.pool, "abandoned"),
    )
    .await
    {
        let vms: Vec<Value> = abandoned
            .iter()
            .map(|vm| {
                json!({
                    "vm": vm.vm_name,
                    "run": vm.run_id,
                    "platform": vm.platform,
                    "since": vm.abandoned_at,
                    "reason": vm.abandoned_reason,
                    "action": "delete it by hand; the platform records it deleted once it is gone",
                })
            })
            .collect();
        checks.insert("vms:needs-a-human".into(), json!(vms));
    }
    let problems = state.managers.problems();
    if !problems.is_empty() {
        ready = false;
    }
    checks.insert(
        "managers".into(),
        json!({ "role": state.managers.role(), "problems": problems }),
    );
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // What this process's store has read and written: rows read per event
    // written is the read amplification an operator can watch.
    let counts = state.db.store.counts();
    let store = json!({ "rows_read": counts.rows_read, "events_written": counts.events_written });
    (
        status,
        Json(json!({ "ready": ready, "checks": checks, "store": store })),
    )
}
