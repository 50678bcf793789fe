//! Following the whole log: batches in commit order, woken by commits, with a
//! polling fallback so that a lost wake-up only costs latency.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::EventStore;
use crate::error::StoreError;
use crate::model::{LogPosition, RecordedEvent};

/// Reads the log forward from a cursor, waiting when there is nothing new.
#[derive(Debug)]
pub struct LogFollower {
    store: Arc<dyn EventStore>,
    cursor: LogPosition,
    batch_size: usize,
    poll_interval: Duration,
    linger: Duration,
    wakeups: watch::Receiver<u64>,
}

/// First pause when events are held back by a running transaction; doubles up
/// to the poll interval. Such transactions last milliseconds.
const HELD_BACK_PAUSE: Duration = Duration::from_millis(1);

impl LogFollower {
    pub fn new(store: Arc<dyn EventStore>, after: LogPosition) -> Self {
        let wakeups = store.wakeups();
        LogFollower {
            store,
            cursor: after,
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            linger: Duration::ZERO,
            wakeups,
        }
    }

    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// After a wake-up, wait this long before reading, so that a burst of
    /// commits is read (and applied) as one batch rather than one by one.
    pub fn linger(mut self, wait: Duration) -> Self {
        self.linger = wait;
        self
    }

    /// The position after the last event handed out.
    pub fn cursor(&self) -> LogPosition {
        self.cursor
    }

    /// The next events after the cursor, waiting until there are some.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut pause = HELD_BACK_PAUSE;
        loop {
            // Mark the wake-ups seen *before* reading, so a commit that lands
            // between the read and the wait still wakes us.
            self.wakeups.borrow_and_update();
            let batch = self.store.read_all(self.cursor, self.batch_size).await?;
            if let Some(last) = batch.events.last() {
                self.cursor = last.cursor();
                return Ok(batch.events);
            }
            if batch.held_back {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(self.poll_interval);
                continue;
            }
            pause = HELD_BACK_PAUSE;
            match tokio::time::timeout(self.poll_interval, self.wakeups.changed()).await {
                Ok(Ok(())) => {
                    if !self.linger.is_zero() {
                        tokio::time::sleep(self.linger).await;
                    }
                }
                Err(_) => {}
                // The store is gone; keep polling at the fallback rate.
                Ok(Err(_)) => tokio::time::sleep(self.poll_interval).await,
            }
        }
    }
}
