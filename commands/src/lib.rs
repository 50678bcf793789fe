//! The write side: load one stream, fold it, decide, append with the expected
//! version; on a lost race, reload and decide again.
//!
//! ```text
//! let handler = Handler::<RunState>::new(store, policy, clock);
//! handler.execute(&run_id.stream(), &command, &Envelope::new("user:alice")).await?;
//! ```
//!
//! Three kinds of failure stay apart, because callers act on each differently:
//! a domain [`CommandError::Rejected`] is answered (never retried), a
//! [`CommandError::Contended`] race that outlasted the retries is retried
//! later, and [`CommandError::Store`] failures are reported (as is
//! [`CommandError::Corrupt`], a stream holding an event that no longer decodes).
//!
//! An [`Envelope`] says who asks, in answer to what (correlation and causation
//! ids) and, with an idempotency key, how to recognise the same request again:
//! event ids derive from the key, so a repeat records nothing. Decisions on
//! several streams are [`Prepared`] and committed together by a [`UnitOfWork`]
//! in one atomic append.
//!
//! Public items: [`Handler`] (with [`Loaded`] and [`Outcome`]); [`intake`]
//! ([`Intake`]: a GitHub delivery across its streams in one transaction, with
//! [`DeliveryInfo`], [`Receipt`], [`IntakeError`] and [`IntakeFailure`]);
//! [`operator`] ([`Operator`]: enqueue, cancel, retry, pause, block);
//! [`catalogue`] ([`Catalogues`]: the catalogue's write side, kept folded in
//! memory, with the import and sample uploads that store content first);
//! [`catalogue_file`] (the TOML/JSON format a catalogue moves in and out in);
//! [`output_diff`] (what a run produced beside what is approved);
//! [`Error`] and [`ErrorKind`], one taxonomy of failures for every use
//! case by what the caller can do about it, which each edge maps once; and
//! [`Clock`], with [`SystemClock`] and [`ManualClock`].

pub mod catalogue;
pub mod catalogue_file;
mod clock;
mod error;
pub mod intake;
pub mod legacy;
pub mod operator;
pub mod output_diff;
pub mod records;

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use sp_domain::codec::EventSchema;
use sp_domain::{Aggregate, Context, DecodeError, Policy};
use sp_eventstore::{
    EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamAppend,
};
use uuid::Uuid;

pub use catalogue::Catalogues;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind};
pub use intake::{DeliveryInfo, Intake, IntakeError, IntakeFailure, Receipt};
pub use operator::{CustomRun, Operator};

/// How often a command is decided again after losing a race for its stream.
const CONFLICT_RETRIES: usize = 8;

/// Who asks, in answer to what, and how to recognise the same request again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// When set, the events' ids derive from it: the same request executed
    /// again (a redelivered webhook, a retried report) records nothing new.
    pub idempotency_key: Option<String>,
}

/// The one way a decided event becomes a stored one: its type name, schema
/// version and JSON, with ids from the envelope.
fn encode<E: EventSchema>(events: &[E], envelope: &Envelope) -> Vec<NewEvent> {
    let metadata = envelope.metadata();
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let encoded = e.encode();
            NewEvent {
                event_id: envelope.event_id(i),
                event_type: encoded.event_type.to_string(),
                schema_version: encoded.schema_version,
                data: encoded.data,
                metadata: metadata.clone(),
            }
        })
        .collect()
}

impl Envelope {
    pub fn new(actor: impl Into<String>) -> Self {
        Envelope {
            actor: actor.into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            idempotency_key: None,
        }
    }

    pub fn correlated(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }

    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            actor: self.actor.clone(),
        }
    }

    /// The id of the `index`th event this request records.
    fn event_id(&self, index: usize) -> Uuid {
        match &self.idempotency_key {
            Some(key) => Uuid::new_v5(&EVENT_ID_NAMESPACE, format!("{key}#{index}").as_bytes()),
            None => Uuid::now_v7(),
        }
    }
}

const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x0c4e_55d1_7a2b_4f3e_8b6d_91a0_3e5f_27c4);

#[derive(Debug, thiserror::Error)]
pub enum CommandError<R: std::error::Error + 'static> {
    #[error("rejected: {0}")]
    Rejected(#[source] R),
    #[error("stream {stream} kept changing under {attempts} attempts; try again")]
    Contended { stream: String, attempts: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stream {stream} holds an unreadable event at position {position}: {error}")]
    Corrupt {
        stream: String,
        position: i64,
        error: DecodeError,
    },
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome<A: Aggregate> {
    /// The events recorded now; empty when there was nothing to do or the
    /// same request had already been recorded.
    pub events: Vec<A::Event>,
    /// The stream's state after the command.
    pub state: A,
    pub version: u64,
    /// The request's idempotency key was found: recorded before, not again.
    pub already_applied: bool,
}

/// A stream folded into its aggregate, with the ids of the events in it.
/// The default is a stream with no events.
#[derive(Debug, Clone, Default)]
pub struct Loaded<A> {
    pub state: A,
    pub version: u64,
    /// For idempotency: a request whose first event id is here was recorded.
    /// Shared with the kept fold, and copied only when both change.
    pub event_ids: Arc<HashSet<Uuid>>,
}

/// Executes commands against streams of one aggregate type.
#[derive(Debug)]
pub struct Handler<A> {
    store: Arc<dyn EventStore>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    folds: Option<Arc<Folds<A>>>,
    _aggregate: PhantomData<fn() -> A>,
}

/// Streams folded by earlier commands, by stream id, so that a command
/// reads only what was recorded since (usually nothing) instead of the
/// whole stream. A kept fold can be behind (another writer, another
/// replica), never wrong: the events after its version are read and folded
/// on, and the append's expected version stays the only concurrency control.
#[derive(Debug)]
struct Folds<A> {
    kept: Mutex<HashMap<String, Arc<Loaded<A>>>>,
    capacity: usize,
}

impl<A> Folds<A> {
    fn get(&self, stream: &str) -> Option<Arc<Loaded<A>>> {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(stream)
            .cloned()
    }

    /// Drop the kept fold of a stream about to change, so the command's own
    /// copy of its state and ids is the only one and changes in place.
    fn forget(&self, stream: &str) {
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(stream);
    }

    fn keep(&self, stream: &str, loaded: Arc<Loaded<A>>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        // Runs end: starting over now and then bounds memory, and costs
        // one full read per stream still in use.
        if kept.len() >= self.capacity && !kept.contains_key(stream) {
            kept.clear();
        }
        kept.insert(stream.to_string(), loaded);
    }
}

impl<A> Clone for Handler<A> {
    fn clone(&self) -> Self {
        Handler {
            store: self.store.clone(),
            policy: self.policy.clone(),
            clock: self.clock.clone(),
            folds: self.folds.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate> Handler<A> {
    pub fn new(store: Arc<dyn EventStore>, policy: Policy, clock: Arc<dyn Clock>) -> Self {
        Handler {
            store,
            policy,
            clock,
            folds: None,
            _aggregate: PhantomData,
        }
    }

    /// Keep up to `streams` folded streams between commands (see `Folds`):
    /// for aggregates whose streams grow long and are commanded often (runs).
    pub fn keeping_folds(mut self, streams: usize) -> Self {
        self.folds = Some(Arc::new(Folds {
            kept: Mutex::new(HashMap::new()),
            capacity: streams.max(1),
        }));
        self
    }

    /// Keep folds in `other`'s cache (both handlers fold the same streams;
    /// a kept fold is a cache, never trusted over the expected version).
    pub fn sharing_folds_with(mut self, other: &Handler<A>) -> Self {
        self.folds = other.folds.clone();
        self
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Fold a stream.
    pub async fn load(&self, stream: &str) -> Result<Loaded<A>, CommandError<A::Rejection>> {
        let Some(folds) = &self.folds else {
            let recorded = self.store.read_stream(stream, 1).await?;
            return Self::fold(stream, &recorded);
        };
        let kept = folds.get(stream);
        let from = kept.as_ref().map_or(1, |k| k.version + 1);
        let recorded = self.store.read_stream(stream, from).await?;
        if recorded.is_empty() {
            // A copy shares the state's big parts (tests, results, ids).
            return Ok(kept.map(|k| Loaded::clone(&k)).unwrap_or_default());
        }
        // Out of the cache while it changes, so the state's shared parts
        // change in place instead of being copied.
        folds.forget(stream);
        let kept = kept.map(Arc::unwrap_or_clone).unwrap_or_default();
        let loaded = Self::fold_onto(stream, kept, &recorded)?;
        folds.keep(stream, Arc::new(loaded.clone()));
        Ok(loaded)
    }

    /// Keep the stream as a command left it, when folds are kept.
    fn keep_outcome(
        &self,
        stream: &str,
        outcome: &Outcome<A>,
        version: u64,
        event_ids: Arc<HashSet<Uuid>>,
    ) {
        if let Some(folds) = &self.folds {
            let kept = Loaded {
                state: outcome.state.clone(),
                version,
                event_ids,
            };
            folds.keep(stream, Arc::new(kept));
        }
    }

    /// Fold a stream read by the caller (several at once with
    /// `EventStore::read_streams`).
    pub fn fold(
        stream: &str,
        recorded: &[RecordedEvent],
    ) -> Result<Loaded<A>, CommandError<A::Rejection>> {
        Self::fold_onto(stream, Loaded::default(), recorded)
    }

    /// Fold the events recorded after `loaded` onto it.
    pub fn fold_onto(
        stream: &str,
        mut loaded: Loaded<A>,
        recorded: &[RecordedEvent],
    ) -> Result<Loaded<A>, CommandError<A::Rejection>> {
        let ids = Arc::make_mut(&mut loaded.event_ids);
        ids.reserve(recorded.len());
        for e in recorded {
            let event = A::Event::decode(&e.event_type, e.schema_version, e.data.as_str())
                .map_err(|error| CommandError::Corrupt {
                    stream: stream.to_string(),
                    position: e.position,
                    error,
                })?;
            loaded.state = loaded.state.apply(&event);
            loaded.version = e.stream_version;
            ids.insert(e.event_id);
        }
        Ok(loaded)
    }

    /// Decide `command` against the stream without recording anything yet:
    /// what to append, and the outcome once appended. For decisions that must
    /// land together with others (a [`UnitOfWork`]).
    pub async fn prepare(
        &self,
        stream: &str,
        command: &A::Command,
        envelope: &Envelope,
    ) -> Result<Prepared<A>, CommandError<A::Rejection>> {
        let loaded = self.load(stream).await?;
        self.prepare_loaded(stream, loaded, command, envelope)
    }

    /// [`Handler::prepare`] on a stream the caller has just loaded.
    pub fn prepare_loaded(
        &self,
        stream: &str,
        loaded: Loaded<A>,
        command: &A::Command,
        envelope: &Envelope,
    ) -> Result<Prepared<A>, CommandError<A::Rejection>> {
        if envelope.idempotency_key.is_some() && loaded.event_ids.contains(&envelope.event_id(0)) {
            return Ok(Prepared {
                append: None,
                outcome: Outcome {
                    events: vec![],
                    state: loaded.state,
                    version: loaded.version,
                    already_applied: true,
                },
            });
        }
        let ctx = Context {
            now: self.clock.now(),
            policy: self.policy.clone(),
        };
        let events = loaded
            .state
            .decide(command, &ctx)
            .map_err(CommandError::Rejected)?;
        let append = (!events.is_empty()).then(|| StreamAppend {
            stream: stream.to_string(),
            expected: ExpectedVersion::Exact(loaded.version),
            events: encode(&events, envelope),
        });
        let state = events.iter().fold(loaded.state, |s, e| s.apply(e));
        Ok(Prepared {
            append,
            outcome: Outcome {
                version: loaded.version + events.len() as u64,
                events,
                state,
                already_applied: false,
            },
        })
    }

    /// Decide `command` against an empty state and append what it decides
    /// without reading the stream, for streams whose aggregate keeps no state
    /// (notices): nothing to conflict with, so no expected version.
    pub async fn record_unread(
        &self,
        stream: &str,
        command: &A::Command,
        envelope: &Envelope,
    ) -> Result<Vec<A::Event>, CommandError<A::Rejection>> {
        let ctx = Context {
            now: self.clock.now(),
            policy: self.policy.clone(),
        };
        let events = A::default()
            .decide(command, &ctx)
            .map_err(CommandError::Rejected)?;
        if !events.is_empty() {
            self.store
                .append(stream, ExpectedVersion::Any, &encode(&events, envelope))
                .await?;
        }
        Ok(events)
    }

    /// Decide `command` against the stream and record the result.
    pub async fn execute(
        &self,
        stream: &str,
        command: &A::Command,
        envelope: &Envelope,
    ) -> Result<Outcome<A>, CommandError<A::Rejection>> {
        self.execute_from(stream, None, command, envelope).await
    }

    /// [`Handler::execute`] starting from a stream the caller has just
    /// loaded, saving a read; after a lost race it reads again.
    pub async fn execute_loaded(
        &self,
        stream: &str,
        loaded: Loaded<A>,
        command: &A::Command,
        envelope: &Envelope,
    ) -> Result<Outcome<A>, CommandError<A::Rejection>> {
        self.execute_from(stream, Some(loaded), command, envelope)
            .await
    }

    async fn execute_from(
        &self,
        stream: &str,
        mut loaded: Option<Loaded<A>>,
        command: &A::Command,
        envelope: &Envelope,
    ) -> Result<Outcome<A>, CommandError<A::Rejection>> {
        for _ in 0..CONFLICT_RETRIES {
            let loaded = match loaded.take() {
                Some(loaded) => loaded,
                None => self.load(stream).await?,
            };
            if let Some(folds) = &self.folds {
                folds.forget(stream);
            }
            // Once `prepare_loaded` has dropped `loaded`, the only copy.
            let mut ids = loaded.event_ids.clone();
            let prepared = self.prepare_loaded(stream, loaded, command, envelope)?;
            let Prepared {
                append,
                mut outcome,
            } = prepared;
            let Some(append) = append else {
                // Nothing to record: the stream is as it was, kept as such.
                self.keep_outcome(stream, &outcome, outcome.version, ids);
                return Ok(outcome);
            };
            match self
                .store
                .append(stream, append.expected, &append.events)
                .await
            {
                Ok(appended) => {
                    if appended.already_appended {
                        outcome.events.clear();
                        outcome.already_applied = true;
                    } else if self.folds.is_some() {
                        // What was appended is known: kept without reading it back.
                        Arc::make_mut(&mut ids).extend(append.events.iter().map(|e| e.event_id));
                        self.keep_outcome(stream, &outcome, appended.last_version, ids);
                    }
                    outcome.version = appended.last_version;
                    return Ok(outcome);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::Contended {
            stream: stream.to_string(),
            attempts: CONFLICT_RETRIES,
        })
    }
}

/// A decision ready to be recorded.
#[derive(Debug, Clone)]
pub struct Prepared<A: Aggregate> {
    /// What to append; `None` when there is nothing to record.
    pub append: Option<StreamAppend>,
    pub outcome: Outcome<A>,
}

/// Decisions on several streams, recorded together or not at all.
#[derive(Debug, Default)]
pub struct UnitOfWork {
    appends: Vec<StreamAppend>,
}

impl UnitOfWork {
    /// Take a prepared decision in; returns its outcome.
    pub fn add<A: Aggregate>(&mut self, prepared: Prepared<A>) -> Outcome<A> {
        self.appends.extend(prepared.append);
        prepared.outcome
    }

    /// Record everything in one transaction. `Ok(true)` when all of it had
    /// been recorded before (the same request again).
    pub async fn commit(self, store: &dyn EventStore) -> Result<bool, StoreError> {
        if self.appends.is_empty() {
            return Ok(false);
        }
        let results = store.append_many(&self.appends).await?;
        Ok(results.iter().all(|r| r.already_appended))
    }
}
