//! Per work item (a run, a VM): when to try it again after failures. The
//! pause grows with each failure as the outside-call policy's pauses do,
//! jitter included. Items that leave the work list are forgotten, so the
//! table only ever holds what is still pending.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::external::CallPolicy;

#[derive(Debug)]
pub(crate) struct Backoff {
    policy: CallPolicy,
    /// Not before, and how many failures in a row.
    pending: HashMap<String, (Instant, u32)>,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            policy: CallPolicy::new(Duration::ZERO, 1).backoff(first, max),
            pending: HashMap::new(),
        }
    }

    /// Whether `key` failed lately and must wait still.
    pub(crate) fn waiting(&self, key: &str, now: Instant) -> bool {
        self.pending.get(key).is_some_and(|(after, _)| *after > now)
    }

    pub(crate) fn failed(&mut self, key: &str) {
        let failures = self.pending.get(key).map_or(1, |(_, n)| n + 1);
        let after = Instant::now() + self.policy.delay(failures);
        self.pending.insert(key.to_string(), (after, failures));
    }

    pub(crate) fn succeeded(&mut self, key: &str) {
        self.pending.remove(key);
    }

    /// Forget every key that is not in this pass's work list.
    pub(crate) fn keep_only<'a>(&mut self, work: impl IntoIterator<Item = &'a str>) {
        let work: std::collections::HashSet<&str> = work.into_iter().collect();
        self.pending.retain(|key, _| work.contains(key.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_longer_and_success_or_leaving_forgets() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        let now = Instant::now();
        assert!(!b.waiting("a", now));
        b.failed("a");
        assert!(b.waiting("a", now));
        assert!(!b.waiting("a", now + Duration::from_secs(11)));
        b.failed("a");
        b.failed("a");
        // The third pause is at least half of 40 s.
        assert!(b.waiting("a", now + Duration::from_secs(19)));
        b.succeeded("a");
        assert!(!b.waiting("a", now));
        b.failed("b");
        b.failed("c");
        b.keep_only(["c"]);
        assert!(!b.waiting("b", now));
        assert!(b.waiting("c", now));
    }
}
