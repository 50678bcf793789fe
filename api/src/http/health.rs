//! Liveness and readiness.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use sp_managers::metrics::QueueState;
use sp_projections::{RunOutcome, queries};

use super::{ApiError, AppState};
use crate::auth::Scope;

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
        queries::vms_with_status(&state.db.pool, "abandoned"),
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

/// The statuses a VM row has until it is deleted; `abandoned` needs a person.
const LIVE_VM_STATUSES: [&str; 4] = ["requested", "created", "delete_requested", "abandoned"];

/// Every (platform, key) pair of `platforms` and the platforms `counts`
/// names, zeros included, so an alert on a key finds its series.
fn every_pair(
    platforms: &[String],
    keys: &[&str],
    counts: &[(String, String, i64)],
) -> Vec<(String, String, i64)> {
    let mut platforms = platforms.to_vec();
    platforms.extend(counts.iter().map(|(p, _, _)| p.clone()));
    platforms.sort();
    platforms.dedup();
    let mut pairs = Vec::with_capacity(platforms.len() * keys.len());
    for platform in platforms {
        for key in keys {
            let n = counts
                .iter()
                .find(|(p, k, _)| *p == platform && k == key)
                .map_or(0, |(_, _, n)| *n);
            pairs.push((platform.clone(), key.to_string(), n));
        }
    }
    pairs
}

/// `GET /metrics`: Prometheus' text format, readable as the API is (a token
/// with the read scope when anonymous reading is off). The deployment's
/// state is read from the read models now; when they cannot be read, its
/// gauges are left out (`sp_state_read` 0, and logged) and the counts are
/// still there.
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    super::files::require(&state, &headers, Scope::Read).await?;
    let now = chrono::Utc::now();
    let pool = &state.db.pool;
    let mut gauges = sp_managers::metrics::State {
        provider: state.vm_provider.clone(),
        managers_leader: state.managers.role().starts_with("leader"),
        read_models_applying: state.projections.iter().any(|(_, s)| !s.borrow().following),
        ..Default::default()
    };
    let read = async {
        let counts = queries::queue_counts(pool)
            .await
            .map_err(|e| e.to_string())?;
        let count = |platform: &str, status: &str| {
            counts
                .iter()
                .find(|(p, s, _)| p == platform && s == status)
                .map_or(0, |(_, _, n)| *n)
        };
        let mut platforms: Vec<String> = state.platforms.clone();
        platforms.extend(counts.iter().map(|(p, _, _)| p.clone()));
        platforms.sort();
        platforms.dedup();
        for platform in platforms {
            let (_, oldest) = queries::waiting_summary(pool, &platform)
                .await
                .map_err(|e| e.to_string())?;
            gauges.queues.push(QueueState {
                waiting: count(&platform, "queued"),
                running: count(&platform, "running"),
                oldest_wait_seconds: oldest.map_or(0.0, |at| seconds_since(at, now)),
                platform,
            });
        }
        let runs = queries::run_counts(pool).await.map_err(|e| e.to_string())?;
        let queues: Vec<String> = gauges.queues.iter().map(|q| q.platform.clone()).collect();
        gauges.runs = every_pair(&queues, &RunOutcome::ALL.map(RunOutcome::as_str), &runs);
        // Platforms no longer configured are included while they have VMs.
        let vms = queries::vm_counts(pool).await.map_err(|e| e.to_string())?;
        gauges.vms = every_pair(&queues, &LIVE_VM_STATUSES, &vms);
        let head = state
            .db
            .store
            .head_position()
            .await
            .map_err(|e| e.to_string())?;
        for (name, status) in &state.projections {
            let checkpoint = status.borrow().checkpoint;
            let behind = (head - checkpoint.position).max(0);
            let oldest = if behind > 0 {
                state
                    .db
                    .store
                    .read_all(checkpoint, 1)
                    .await
                    .ok()
                    .and_then(|b| b.events.first().map(|e| seconds_since(e.recorded_at, now)))
            } else {
                None
            };
            gauges
                .lag
                .push((name.to_string(), behind, oldest.unwrap_or(0.0)));
        }
        Ok::<_, String>(())
    };
    let failure = match tokio::time::timeout(CHECK_TIMEOUT, read).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(_) => Some(format!(
            "the read models did not answer within {}s",
            CHECK_TIMEOUT.as_secs()
        )),
    };
    gauges.read = failure.is_none();
    if let Some(error) = failure {
        tracing::warn!(%error, "metrics: the deployment's state is left out of this scrape");
        // Half of a state is not shown as if it were all of it.
        gauges.queues.clear();
        gauges.runs.clear();
        gauges.vms.clear();
        gauges.lag.clear();
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    ))
}

fn seconds_since(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> f64 {
    ((now - at).num_milliseconds().max(0) as f64) / 1000.0
}
