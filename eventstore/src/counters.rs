//! What a store has read and written, counted by the store itself: how a
//! test or a bench tells how much a piece of work read (rows of the log
//! fetched), without timing anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Totals since the store was opened (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Events fetched from the log by its reads (a stream, several
    /// streams, the whole log in order).
    pub rows_read: u64,
    /// Events appended (not counting repeats that found their ids there).
    pub events_written: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Counters(Arc<Totals>);

#[derive(Debug, Default)]
struct Totals {
    rows_read: AtomicU64,
    events_written: AtomicU64,
}

impl Counters {
    pub(crate) fn read(&self, rows: usize) {
        self.0.rows_read.fetch_add(rows as u64, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, events: usize) {
        self.0
            .events_written
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> StoreCounts {
        StoreCounts {
            rows_read: self.0.rows_read.load(Ordering::Relaxed),
            events_written: self.0.events_written.load(Ordering::Relaxed),
        }
    }
}
