//! When a process manager looks at its work again: a read model it follows
//! changed, its next due time came, or (a fallback for anything missed) a
//! periodic tick.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sp_commands::Clock;
use sp_projections::Change;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Wake {
    changes: broadcast::Receiver<Change>,
    /// Due times are on the platform's clock, so tests can move it.
    clock: Arc<dyn Clock>,
    follows: &'static [&'static str],
    tick: Duration,
}

impl Wake {
    pub fn new(
        changes: &broadcast::Sender<Change>,
        clock: Arc<dyn Clock>,
        follows: &'static [&'static str],
        tick: Duration,
    ) -> Self {
        Wake {
            changes: changes.subscribe(),
            clock,
            follows,
            tick,
        }
    }

    /// Wait for a change of a followed model, `due`, the tick, or shutdown
    /// (false). Changes that arrived meanwhile are taken together.
    pub async fn wait(&mut self, due: Option<DateTime<Utc>>, shutdown: &CancellationToken) -> bool {
        let until_due = due
            .map(|at| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(self.tick)
            .min(self.tick);
        let sleep = tokio::time::sleep(until_due);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = &mut sleep => return true,
                change = self.changes.recv() => match change {
                    Ok(c) if self.follows.contains(&c.projection) => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        (&mut sleep).await;
                        return !shutdown.is_cancelled();
                    }
                },
            }
        }
        // Take the rest of a burst in one go.
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.changes.try_recv() {
        }
        true
    }
}
