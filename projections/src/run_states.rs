//! The domain state of a run as of an event, for projections that show runs.
//!
//! Folding with the domain's own `evolve` keeps the read models in step with
//! `decide`. A cache makes it one `evolve` per event; after a restart, a
//! rebuild or a retried batch, the stream's prefix is read once again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sp_domain::codec::EventSchema;
use sp_domain::{RunEvent, RunId, RunState};
use sp_eventstore::{EventStore, RecordedEvent};

use crate::runner::ProjectionError;

/// Entries kept before the cache starts over; a run's state is small.
const CAPACITY: usize = 20_000;

#[derive(Debug, Clone)]
pub struct Folded {
    pub state: RunState,
    /// Position of the run's Queued event.
    pub seq: i64,
    pub event: RunEvent,
}

#[derive(Debug)]
pub struct RunStates {
    store: Arc<dyn EventStore>,
    cache: Mutex<HashMap<String, (RunState, i64)>>,
}

pub fn decode(event: &RecordedEvent) -> Result<RunEvent, ProjectionError> {
    RunEvent::decode(&event.event_type, event.schema_version, event.data.clone()).map_err(|e| {
        ProjectionError::Decode {
            position: event.position,
            message: e.to_string(),
        }
    })
}

impl RunStates {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        RunStates {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn clear(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The run's state just after `event`; `None` for events of other streams.
    pub async fn after(&self, event: &RecordedEvent) -> Result<Option<Folded>, ProjectionError> {
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
            Some((state, seq)) if state.version + 1 == event.stream_version => {
                (state.evolve(&decoded), seq)
            }
            _ => self.fold_prefix(event).await?,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(event.stream_id.clone(), (state.clone(), seq));
        Ok(Some(Folded {
            state,
            seq,
            event: decoded,
        }))
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
