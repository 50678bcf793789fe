//! Per work item (a run, a VM): when to try it again after failures. The
//! pause grows with each failure as the outside-call policy's pauses do,
//! jitter included. Items that leave the work list are forgotten, so the
//! table only ever holds what is still pending.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use crate::external::CallPolicy;

#[derive(Debug)]
pub(crate) struct Backoff<K> {
    pauses: ExponentialBuilder,
    /// Not before, and the pauses still to come.
    pending: HashMap<K, (Instant, ExponentialBackoff)>,
}

impl<K: Hash + Eq + Clone> Backoff<K> {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            pauses: CallPolicy::new(Duration::ZERO, 1)
                .backoff(first, max)
                .pauses(),
            pending: HashMap::new(),
        }
    }

    /// Whether `key` failed lately and must wait still.
    pub(crate) fn waiting(&self, key: &K, now: Instant) -> bool {
        self.pending.get(key).is_some_and(|(after, _)| *after > now)
    }

    pub(crate) fn failed(&mut self, key: &K) {
        let (after, pauses) = self
            .pending
            .entry(key.clone())
            .or_insert_with(|| (Instant::now(), self.pauses.build()));
        // The schedule has no end: a pause is always there.
        *after = Instant::now() + pauses.next().unwrap_or_default();
    }

    pub(crate) fn succeeded(&mut self, key: &K) {
        self.pending.remove(key);
    }

    /// Forget every key that is not in this pass's work list.
    pub(crate) fn keep_only<'a>(&mut self, work: impl IntoIterator<Item = &'a K>)
    where
        K: 'a,
    {
        let work: HashSet<&K> = work.into_iter().collect();
        self.pending.retain(|key, _| work.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_longer_and_success_or_leaving_forgets() {
        let mut b: Backoff<&str> = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        let now = Instant::now();
        assert!(!b.waiting(&"a", now));
        b.failed(&"a");
        assert!(b.waiting(&"a", now));
        assert!(!b.waiting(&"a", now + Duration::from_secs(11)));
        b.failed(&"a");
        b.failed(&"a");
        // The third pause is at least half of 40 s.
        assert!(b.waiting(&"a", now + Duration::from_secs(19)));
        b.succeeded(&"a");
        assert!(!b.waiting(&"a", now));
        b.failed(&"b");
        b.failed(&"c");
        b.keep_only([&"c"]);
        assert!(!b.waiting(&"b", now));
        assert!(b.waiting(&"c", now));
    }
}
