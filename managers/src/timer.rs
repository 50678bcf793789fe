//! Durable deadlines. Every run that is not final has its deadline in the
//! queue read model; when it passes, the timer fires it, and the domain
//! decides: `TimedOut`, compensation (delete the VM), then `RetryScheduled` or
//! `Failed`. Deadlines that passed while the platform was down fire at
//! start-up.

use sp_domain::RunCommand;
use sp_projections::{QueueProjection, queries};
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::wake::Wake;

const NAME: &str = "timer";

pub async fn run(m: Managers, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[QueueProjection::NAME],
        m.config.tick,
    );
    loop {
        let due = fire_due(&m).await;
        if !wake.wait(due, &stop).await {
            return;
        }
    }
}

/// Fire what is due; returns when to look again.
pub async fn fire_due(m: &Managers) -> Option<chrono::DateTime<chrono::Utc>> {
    let pool = &m.db.pool;
    match queries::due_deadlines(pool, m.clock.now()).await {
        Ok(due) => {
            m.health.ok(NAME);
            let mut failed = false;
            for run in due {
                let outcome = m.command(NAME, run, &RunCommand::FireDeadline).await;
                failed |= m.log_outcome(NAME, run, "fire deadline", outcome);
            }
            // What failed is still due: try again on the next change or
            // tick, not at once in a loop.
            if failed {
                return None;
            }
        }
        Err(error) => {
            m.health
                .failing(NAME, format!("cannot read due deadlines: {error}"));
            return None;
        }
    }
    queries::next_due(pool).await.ok().flatten()
}
