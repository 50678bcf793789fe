//! How long a running run has left, from what its remaining tests took in
//! recent runs on the same platform: the median of each test's last few
//! runtimes, summed (the runner runs tests one after another). Tests never
//! run before count at the median of the others, and are counted apart so
//! the estimate can say how much of it is a guess.

use std::collections::HashMap;

/// Runtimes kept per test: the median of the last few runs.
pub const RECENT_RUNS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub remaining_ms: u64,
    /// Remaining tests with a recorded runtime on the platform.
    pub known: usize,
    /// Remaining tests never run there (counted at the others' median).
    pub unknown: usize,
}

fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2
    })
}

/// `remaining` test ids; `history` each test's recent runtimes (ms).
/// `None` when no remaining test has ever run on the platform.
pub fn remaining(remaining: &[&str], history: &HashMap<String, Vec<u64>>) -> Option<Estimate> {
    let mut medians: Vec<u64> = Vec::new();
    let mut unknown = 0;
    for id in remaining {
        let mut recent: Vec<u64> = history
            .get(*id)
            .map(|h| h.iter().take(RECENT_RUNS).copied().collect())
            .unwrap_or_default();
        match median(&mut recent) {
            Some(m) => medians.push(m),
            None => unknown += 1,
        }
    }
    let typical = median(&mut medians.clone())?;
    let known = medians.iter().fold(0u64, |sum, m| sum.saturating_add(*m));
    let guessed = typical.saturating_mul(u64::try_from(unknown).unwrap_or(u64::MAX));
    Some(Estimate {
        remaining_ms: known.saturating_add(guessed),
        known: medians.len(),
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_recent_runs_are_summed_and_the_unknown_counted_apart() {
        let history: HashMap<String, Vec<u64>> = [
            // Newest first: only the last five count (the 9000 does not).
            ("a".to_string(), vec![100, 300, 200, 100, 100, 9000]),
            ("b".to_string(), vec![1000, 3000]),
        ]
        .into();
        let e = remaining(&["a", "b", "c"], &history).expect("an estimate");
        // a: median 100; b: 2000; c unknown, at the median of (100, 2000).
        assert_eq!(
            e,
            Estimate {
                remaining_ms: 100 + 2000 + 1050,
                known: 2,
                unknown: 1
            }
        );
        assert_eq!(remaining(&["c"], &history), None);
        assert_eq!(
            remaining(&[], &history),
            None,
            "nothing left has nothing to say"
        );
    }
}
