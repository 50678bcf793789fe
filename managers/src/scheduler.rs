//! Gives waiting runs a VM slot: per platform, at most its capacity of VMs
//! that may exist (requested, created, or being deleted), highest priority
//! first, then queue order; nothing on a paused platform.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sp_domain::{RunCommand, RunId};
use sp_projections::{QueueProjection, VmsProjection, queries};
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::wake::Wake;

const NAME: &str = "scheduler";

pub async fn run(m: Managers, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[QueueProjection::NAME, VmsProjection::NAME],
        m.config.tick,
    );
    let mut in_flight = HashMap::new();
    loop {
        let due = schedule(&m, &mut in_flight).await;
        if !wake.wait(due, &stop).await {
            return;
        }
    }
}

/// One scheduling pass; returns when a retry becomes eligible, if any.
///
/// `in_flight` holds runs given a VM (run id → platform) that the vms model
/// does not show yet: they count against capacity until it does, so a
/// lagging model never over-books a platform.
pub async fn schedule(
    m: &Managers,
    in_flight: &mut HashMap<RunId, String>,
) -> Option<DateTime<Utc>> {
    let pool = &m.db.pool;
    let (entries, states, live) = match tokio::try_join!(
        queries::queue(pool, None),
        queries::platform_states(pool),
        queries::live_vms(pool),
    ) {
        Ok(read) => read,
        Err(error) => {
            m.health
                .failing(NAME, format!("cannot read the queue: {error}"));
            return None;
        }
    };
    m.health.ok(NAME);
    in_flight.retain(|run, _| {
        !live.iter().any(|vm| vm.run_id == *run) && entries.iter().any(|e| e.run_id == *run)
    });
    let now = m.clock.now();
    let mut next_eligible: Option<DateTime<Utc>> = None;
    for platform in &m.config.platforms {
        let name = platform.as_str();
        if states.iter().any(|s| s.platform == name && s.paused) {
            continue;
        }
        let used = live.iter().filter(|vm| vm.platform == name).count()
            + in_flight.values().filter(|p| p.as_str() == name).count();
        let mut free = m.config.capacity_of(name).saturating_sub(used);
        // Queue order: the model's position among the platform's waiting runs.
        let mut waiting: Vec<_> = entries
            .iter()
            .filter(|e| {
                e.platform == name && e.stage == "awaiting_vm" && !in_flight.contains_key(&e.run_id)
            })
            .collect();
        waiting.sort_by_key(|e| e.position);
        for entry in waiting {
            if let Some(at) = entry.eligible_at
                && at > now
            {
                next_eligible = Some(next_eligible.map_or(at, |n| n.min(at)));
                continue;
            }
            if free == 0 {
                break;
            }
            let run = entry.run_id;
            let attempt = u32::try_from(entry.attempt).unwrap_or(0);
            let credential = m.keys.credential(&run.to_string(), attempt);
            let command = RunCommand::RequestVm {
                runner_credential_sha256: crate::RunnerKeys::hash(&credential),
            };
            let outcome = m.command(NAME, run, &command).await;
            if matches!(&outcome, Ok(events) if !events.is_empty()) {
                free -= 1;
                in_flight.insert(run, name.to_string());
            }
            m.log_outcome(NAME, run, "request a VM", outcome);
        }
    }
    next_eligible
}
