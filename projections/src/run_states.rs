//! The domain state of a run as of an event, for projections that show runs.
//!
//! Folding with the domain's own `evolve` keeps the read models in step with
//! `decide`. A cache makes it one `evolve` per event, without copying the
//! state; a run's first event needs no read at all. After a restart, a moved
//! checkpoint or a retried batch the cached version no longer fits, and the
//! stream's prefix is read once again: the cache can be stale, never wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sp_domain::{RegressionTest, RunEvent, RunId, RunState};
use sp_eventstore::{EventStore, RecordedEvent};

use crate::run_view::RunRow;
use crate::runner::{ProjectionError, Step, decode};

/// Entries kept before the cache starts over; a run's state is small.
const CAPACITY: usize = 20_000;

/// A run as of one of its events, as every read model sees it.
#[derive(Debug, Clone)]
pub struct Folded {
    /// The tests in scope (shared with the state).
    pub tests: Arc<[RegressionTest]>,
    /// The dashboard's row after the event (its id, platform, position of
    /// its Queued event, …).
    pub row: RunRow,
    /// The whole state after the event, on the run's last event of a batch
    /// only: holding each event's state would copy the run's results at
    /// every event after it.
    pub state: Option<Arc<RunState>>,
    pub event: RunEvent,
}

#[derive(Debug)]
pub struct RunStates {
    store: Arc<dyn EventStore>,
    cache: Mutex<HashMap<String, (Arc<RunState>, i64)>>,
}

impl RunStates {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        RunStates {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Each event of a batch with, for a run's events, the run as of it;
    /// the last event of each run also carries its whole state.
    pub async fn fold<'a>(
        &self,
        batch: &'a [RecordedEvent],
    ) -> Result<Vec<Step<'a>>, ProjectionError> {
        let mut steps = Vec::with_capacity(batch.len());
        for event in batch {
            steps.push(Step {
                event,
                run: self.after(event).await?,
            });
        }
        // Each run's state as the batch leaves it, shared with the cache
        // only now that no more events of this batch change it.
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = std::collections::HashSet::new();
        for step in steps.iter_mut().rev() {
            if let Some(run) = &mut step.run
                && seen.insert(step.event.stream_id.as_str())
            {
                run.state = cache.get(&step.event.stream_id).map(|(s, _)| s.clone());
            }
        }
        drop(cache);
        Ok(steps)
    }

    /// The run as of `event`; `None` for events of other streams (and a run
    /// stream without a run, which no model shows).
    async fn after(&self, event: &RecordedEvent) -> Result<Option<Folded>, ProjectionError> {
        if RunId::from_stream(&event.stream_id).is_none() {
            return Ok(None);
        }
        let decoded = decode(event)?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&event.stream_id);
        let (state, seq) = match cached {
            // Nothing else holds it (steps hold only views): not copied.
            Some((state, seq)) if state.version + 1 == event.stream_version => {
                (Arc::unwrap_or_clone(state).evolve(&decoded), seq)
            }
            _ if event.stream_version == 1 => {
                (RunState::default().evolve(&decoded), event.position)
            }
            _ => self.fold_prefix(event).await?,
        };
        let folded = state.run.as_ref().and_then(|run| {
            Some(Folded {
                tests: run.info.tests.clone(),
                row: RunRow::from_state(&state, seq, event.position)?,
                state: None,
                event: decoded,
            })
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(event.stream_id.clone(), (Arc::new(state), seq));
        Ok(folded)
    }

    async fn fold_prefix(&self, event: &RecordedEvent) -> Result<(RunState, i64), ProjectionError> {
        let stream = self.store.read_stream(&event.stream_id, 1).await?;
        let mut state = RunState::default();
        let mut seq = event.position;
        for e in stream
            .iter()
            .take_while(|e| e.stream_version <= event.stream_version)
        {
            if e.stream_version == 1 {
                seq = e.position;
            }
            state = state.evolve(&decode(e)?);
        }
        Ok((state, seq))
    }
}

/// A run's whole state as of its latest event, folded from its stream.
pub async fn run_state(
    store: &dyn EventStore,
    run: RunId,
) -> Result<Option<RunState>, ProjectionError> {
    let events = store.read_stream(&run.stream(), 1).await?;
    if events.is_empty() {
        return Ok(None);
    }
    let mut state = RunState::default();
    for e in &events {
        state = state.evolve(&decode(e)?);
    }
    Ok(Some(state))
}

/// A run as it was just after the event at global `position`, folded from
/// its events up to there; `None` when the run did not exist yet.
pub async fn run_as_of(
    store: &dyn EventStore,
    run: RunId,
    position: i64,
) -> Result<Option<crate::RunRow>, ProjectionError> {
    let events = store.read_stream(&run.stream(), 1).await?;
    // Within one stream, positions increase with versions.
    let upto = events.iter().take_while(|e| e.position <= position).count();
    let (Some(first), Some(last)) = (events.first(), events[..upto].last()) else {
        return Ok(None);
    };
    let mut state = RunState::default();
    for e in &events[..upto] {
        state = state.evolve(&decode(e)?);
    }
    Ok(crate::RunRow::from_state(
        &state,
        first.position,
        last.position,
    ))
}
