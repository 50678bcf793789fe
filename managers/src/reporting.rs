//! What a reporter to GitHub (commit statuses, check runs) keeps between its
//! passes over the work list: GitHub's pause, per-run backoff, the failures
//! it recorded, and what it told GitHub before the read model shows it.

use std::collections::HashSet;
use std::time::Duration;

use sp_domain::RunId;
use tokio::time::Instant;

use crate::backoff::Backoff;

#[derive(Debug)]
pub(crate) struct Reporting {
    /// Until when GitHub asked for no more requests.
    pub paused_until: Option<Instant>,
    /// Runs whose report could not be sent, waiting to be tried again.
    pub retry: Backoff<RunId>,
    /// (run, state) failures already recorded by this process.
    pub recorded: HashSet<(RunId, String)>,
    /// States this process told, until the read model shows them: a wake-up
    /// in between (the model applying an event from before the report) must
    /// not send a state again.
    pub told: HashSet<(RunId, String)>,
}

impl Reporting {
    pub fn new(first_retry: Duration, max_retry: Duration) -> Self {
        Reporting {
            paused_until: None,
            retry: Backoff::new(first_retry, max_retry),
            recorded: HashSet::new(),
            told: HashSet::new(),
        }
    }

    pub fn rate_limited(&self) -> bool {
        self.paused_until
            .is_some_and(|until| until > Instant::now())
    }

    /// Forget every run but those still on the work list.
    pub fn keep_only<'a>(&mut self, runs: impl IntoIterator<Item = &'a RunId>) {
        let on_list: HashSet<&RunId> = runs.into_iter().collect();
        self.retry.keep_only(on_list.iter().copied());
        self.recorded.retain(|(run, _)| on_list.contains(run));
        self.told.retain(|(run, _)| on_list.contains(run));
    }
}
