//! The append-only event log of the Sample Platform, behind one trait with two
//! backends: SQLite (a file; the embedded default) and PostgreSQL (production,
//! several replicas).
//!
//! 1. [`Database::open`] a URL (`sqlite://…` or `postgres://…`) and
//!    [`Database::migrate`] it;
//! 2. [`EventStore::append`] events to a stream with an [`ExpectedVersion`];
//!    a lost race is [`StoreError::Conflict`], a retried batch is a no-op;
//! 3. read a stream with [`EventStore::read_stream`], or follow the whole log
//!    with a [`LogFollower`], which wakes on new commits and polls as a fallback.
//!
//! [`EventStore::read_all`] never skips an event. On PostgreSQL ([`PgStore`]),
//! positions are taken at insert time and transactions commit in any order, so
//! each row keeps its transaction id (`xid8`) and readers see only transactions
//! below `pg_snapshot_xmin(pg_current_snapshot())`; other replicas are woken by a
//! coalesced `NOTIFY`. [`SqliteStore`] writes through one connection.
//!
//! Also public: [`DbOptions`], [`Pool`] and [`redact`]; the records ([`NewEvent`],
//! [`RecordedEvent`], [`Metadata`], [`StreamAppend`], [`Appended`], [`LogBatch`],
//! [`LogPosition`]); [`StoreError::is_transient`], which tells callers whether to
//! answer "try again" or "refused"; [`nul_path`], with which the edges name a NUL
//! character no backend stores; and [`MAX_STREAM_ID_LEN`].
//!
//! Beside the log, the same database keeps a few tables that are not events,
//! each behind a module of its own: the managers' [`lease`] (whose token
//! fences appends), the deployment's secret [`keys`], and operators' API
//! [`tokens`]. [`Tx`] with [`on_tx!`] and [`on_pool!`] write SQL once for
//! both backends, here and in the read models.
//!
//! Both backends pass the same conformance suite (`testing` feature, module
//! `testing`, run by `tests/conformance.rs` through [`on_both_backends!`], the
//! one way every crate runs a test on both backends).

pub mod audit;
pub mod chain;
mod counters;
mod database;
mod error;
mod fence;
mod follow;
pub mod keys;
pub mod lease;
mod model;
mod postgres;
mod relink;
pub mod sessions;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
mod tx;

use async_trait::async_trait;
use tokio::sync::watch;

pub use counters::StoreCounts;
pub use database::{Database, DbOptions, Pool, redact};
pub use error::StoreError;
pub use fence::FencedStore;
pub use follow::LogFollower;
pub use model::{
    Appended, EventData, ExpectedVersion, Fence, LogBatch, LogPosition, Metadata, NewEvent,
    RecordedEvent, StreamAppend,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use tx::Tx;

/// The longest stream id accepted; ids are built by the platform, so a longer
/// one is a bug, not data.
pub const MAX_STREAM_ID_LEN: usize = 200;

/// An append-only log of events grouped in streams.
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    /// Append a batch to one stream, atomically. The batch lands only if the
    /// stream is at `expected`; re-appending a batch whose event ids are all in
    /// the log already succeeds with `already_appended` and writes nothing.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError>;

    /// Append to several streams in one transaction: every batch lands or
    /// none does. Batches land in the order given (their events get
    /// increasing positions). A conflict on any stream fails the whole append;
    /// re-appending batches that all landed before succeeds without writing.
    async fn append_many(&self, appends: &[StreamAppend]) -> Result<Vec<Appended>, StoreError>;

    /// [`EventStore::append_many`], landing only while `fence`'s lease still
    /// has its token ([`StoreError::Fenced`] otherwise). The check and the
    /// insert are one transaction, and a take-over that bumps the token waits
    /// for it, so nothing a deposed leader decides lands after the take-over.
    async fn append_fenced(
        &self,
        fence: &Fence,
        appends: &[StreamAppend],
    ) -> Result<Vec<Appended>, StoreError>;

    /// The events of one stream from `from_version` (1 = the first) on.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Several whole streams in one read, in the order asked (an empty list
    /// for a stream that does not exist).
    async fn read_streams(&self, streams: &[String])
    -> Result<Vec<Vec<RecordedEvent>>, StoreError>;

    /// Up to `limit` events after `after`, in commit order. Never skips an
    /// event: what a concurrent transaction has not committed yet is not
    /// returned, and neither is anything after it.
    async fn read_all(&self, after: LogPosition, limit: usize) -> Result<LogBatch, StoreError>;

    /// The highest position in the log (0 when empty), for measuring lag.
    async fn head_position(&self) -> Result<i64, StoreError>;

    /// Changes after every commit of this process, and of other processes
    /// where the backend can tell (PostgreSQL `LISTEN`).
    fn wakeups(&self) -> watch::Receiver<u64>;

    /// Rows read and events written since the store was opened.
    fn counts(&self) -> StoreCounts;
}

/// The path (`field.list[2].name`) of the first string in `value`, key or
/// value, that holds a NUL character.
///
/// PostgreSQL cannot store NUL in text or JSONB, and retrying never helps, so
/// both backends refuse such an append alike, and the edges check their input
/// with this to answer a 400 that names the field.
pub fn nul_path(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\0"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { ".".into() } else { path })
}

/// Checks every backend applies before touching the database.
fn validate_append(stream: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    if stream.is_empty() || stream.len() > MAX_STREAM_ID_LEN {
        return Err(StoreError::Invalid(format!(
            "stream id must be 1 to {MAX_STREAM_ID_LEN} bytes, got {}",
            stream.len()
        )));
    }
    if events.is_empty() {
        return Err(StoreError::Invalid(
            "an append needs at least one event".into(),
        ));
    }
    let mut ids = std::collections::HashSet::with_capacity(events.len());
    if let Some(dup) = events.iter().find(|e| !ids.insert(e.event_id)) {
        return Err(StoreError::Invalid(format!(
            "event id {} appears twice in one batch",
            dup.event_id
        )));
    }
    if stream.contains('\0') {
        return Err(StoreError::Invalid(
            "a stream id cannot hold a NUL character".into(),
        ));
    }
    for e in events {
        if e.event_type.contains('\0') || e.metadata.actor.contains('\0') {
            return Err(StoreError::Invalid(format!(
                "{}: the type or actor holds a NUL character",
                e.event_type.replace('\0', "\\0")
            )));
        }
        if let Some(path) = nul_path(&e.data) {
            return Err(StoreError::Invalid(format!(
                "{} data {path}: a NUL character cannot be stored",
                e.event_type
            )));
        }
    }
    Ok(())
}

/// Group events read for several streams by stream, in the order asked.
fn by_stream(streams: &[String], events: Vec<RecordedEvent>) -> Vec<Vec<RecordedEvent>> {
    let mut grouped: Vec<Vec<RecordedEvent>> = vec![Vec::new(); streams.len()];
    for e in events {
        if let Some(i) = streams.iter().position(|s| *s == e.stream_id) {
            grouped[i].push(e);
        }
    }
    grouped
}

/// Checks of an atomic append to several streams: each stream at most once.
fn validate_many(appends: &[StreamAppend]) -> Result<(), StoreError> {
    if appends.is_empty() {
        return Err(StoreError::Invalid(
            "an append needs at least one stream".into(),
        ));
    }
    let mut streams = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for a in appends {
        validate_append(&a.stream, &a.events)?;
        if !streams.insert(a.stream.as_str()) {
            return Err(StoreError::Invalid(format!(
                "stream {} appears twice in one append",
                a.stream
            )));
        }
        if let Some(dup) = a.events.iter().find(|e| !ids.insert(e.event_id)) {
            return Err(StoreError::Invalid(format!(
                "event id {} appears twice in one append",
                dup.event_id
            )));
        }
    }
    Ok(())
}

/// Given the stored (event id, stream, version, position) of ids of a batch:
/// the batch was appended before, was not, or its ids were used elsewhere.
fn previously_appended(
    stream: &str,
    batch_len: usize,
    found: &[(uuid::Uuid, String, i64, i64)],
) -> Result<Option<Appended>, StoreError> {
    if found.is_empty() {
        return Ok(None);
    }
    if let Some((event_id, other, _, _)) = found.iter().find(|(_, s, _, _)| s != stream) {
        return Err(StoreError::EventIdReused {
            event_id: *event_id,
            stream: other.clone(),
        });
    }
    if found.len() != batch_len {
        return Err(StoreError::EventIdReused {
            event_id: found[0].0,
            stream: stream.to_string(),
        });
    }
    let last_version = found.iter().map(|f| f.2).max().unwrap_or(0);
    let last_position = found.iter().map(|f| f.3).max().unwrap_or(0);
    Ok(Some(Appended {
        last_version: u64::try_from(last_version).unwrap_or(0),
        last_position,
        already_appended: true,
    }))
}
