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
/// lagging model never over-books a platform. A pass reads only the runs it
/// can start (a platform's free slots' worth), however long the queue.
pub async fn schedule(
    m: &Managers,
    in_flight: &mut HashMap<RunId, String>,
) -> Option<DateTime<Utc>> {
    let pool = &m.db.pool;
    let flying: Vec<RunId> = in_flight.keys().copied().collect();
    let (states, live, queued) = match tokio::try_join!(
        queries::platform_states(pool),
        queries::live_vms(pool),
        queries::still_queued(pool, &flying),
    ) {
        Ok(read) => read,
        Err(error) => {
            m.health
                .failing(NAME, format!("cannot read the queue: {error}"));
            return None;
        }
    };
    in_flight.retain(|run, _| !live.iter().any(|vm| vm.run_id == *run) && queued.contains(run));
    let now = m.clock.now();
    let mut next_eligible: Option<DateTime<Utc>> = None;
    for platform in &m.config.platforms {
        let name = platform.as_str();
        if states.iter().any(|s| s.platform == name && s.paused) {
            continue;
        }
        let flying = in_flight.values().filter(|p| p.as_str() == name).count();
        let used = live.iter().filter(|vm| vm.platform == name).count() + flying;
        let mut free = m.config.capacity_of(name).saturating_sub(used);
        if free == 0 {
            continue;
        }
        // Runs in flight may still show as waiting: read past them.
        let (startable, next) = match queries::startable(pool, name, now, free + flying).await {
            Ok(read) => read,
            Err(error) => {
                m.health
                    .failing(NAME, format!("cannot read the queue: {error}"));
                return None;
            }
        };
        if let Some(at) = next {
            next_eligible = Some(next_eligible.map_or(at, |n| n.min(at)));
        }
        for entry in startable {
            if free == 0 {
                break;
            }
            if in_flight.contains_key(&entry.run_id) {
                continue;
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
    m.health.ok(NAME);
    next_eligible
}
