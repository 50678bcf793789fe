//! What goes into the log and what comes out of it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

/// Who and why: carried by every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Shared by every event that one outside request (a webhook delivery, an
    /// operator's mutation, a timer) led to.
    pub correlation_id: Uuid,
    /// The event or request that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who: `github:<login>`, `user:<name>`, `system:<component>`, `runner:<run>/<attempt>`.
    pub actor: String,
}

impl Metadata {
    pub fn new(actor: impl Into<String>, correlation_id: Uuid) -> Self {
        Metadata {
            correlation_id,
            causation_id: None,
            actor: actor.into(),
        }
    }

    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }
}

/// The lease an append is made under: it lands only while the lease's token
/// is still this one, so a leader that lost its lease cannot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The `leases` row's name.
    pub lease: String,
    pub token: i64,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique for ever: appending the same id again is a no-op, so a retry
    /// after a lost reply never duplicates an event.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: Metadata,
}

impl NewEvent {
    /// What its content hash covers, appended to `stream` at `recorded_at`
    /// (to the microsecond, as the store keeps it).
    pub fn content<'a>(
        &'a self,
        stream: &'a str,
        recorded_at: DateTime<Utc>,
    ) -> crate::chain::Content<'a> {
        crate::chain::Content {
            stream,
            event_id: self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            data: &self.data,
            metadata: &self.metadata,
            recorded_at,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The event's place in the log, unique and increasing in append order.
    pub position: i64,
    /// The commit it belongs to (PostgreSQL: the writing transaction's id;
    /// SQLite: equal to `position`). The log is read in (commit, position) order.
    pub commit: i64,
    pub stream_id: String,
    /// 1 for the first event of a stream, then one more per event.
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: EventData,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
    /// Its link in its stream's hash chain (`chain`); `None` only in a
    /// database not yet migrated to chains.
    pub hash: Option<crate::chain::Hash>,
}

/// An event's data as the log holds it: JSON text, kept as read. Decoding
/// reads the text straight into the domain's types, so reading the log
/// builds no JSON tree per event.
#[derive(Clone)]
pub struct EventData(Box<RawValue>);

impl EventData {
    /// Checks that `text` is JSON.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(EventData)
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// The data as a tree, for a reader that looks at a field or two.
    pub fn to_value(&self) -> Value {
        // It was checked to be JSON when it was read.
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl From<Box<RawValue>> for EventData {
    fn from(raw: Box<RawValue>) -> Self {
        EventData(raw)
    }
}

/// The same JSON, however it is spaced or its keys ordered (PostgreSQL's
/// `jsonb` gives its own order back).
impl PartialEq for EventData {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RecordedEvent {
    /// What its content hash covers; `data` is its data as a tree
    /// ([`EventData::to_value`]).
    pub fn content<'a>(&'a self, data: &'a Value) -> crate::chain::Content<'a> {
        crate::chain::Content {
            stream: &self.stream_id,
            event_id: self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            data,
            metadata: &self.metadata,
            recorded_at: self.recorded_at,
        }
    }

    /// The cursor just past this event.
    pub fn cursor(&self) -> LogPosition {
        LogPosition {
            commit: self.commit,
            position: self.position,
        }
    }
}

/// A place in the whole log: the last event a reader has seen.
///
/// PostgreSQL assigns positions when a row is inserted, not when its
/// transaction commits, so a slow transaction can commit a lower position after
/// a higher one became visible. Readers therefore follow the log in commit
/// order, (transaction id, position), and only below the oldest transaction
/// still running; within one stream this order is the version order.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    pub commit: i64,
    pub position: i64,
}

impl LogPosition {
    /// Before the first event.
    pub const START: LogPosition = LogPosition {
        commit: 0,
        position: 0,
    };
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.position, self.commit)
    }
}

/// What the writer believes about the stream it appends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last version must be exactly this (0 = no stream).
    Exact(u64),
}

impl ExpectedVersion {
    /// The version the stream must be at, if any.
    pub fn required(self) -> Option<u64> {
        match self {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(v) => Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// One stream's part of an atomic append to several streams.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub last_version: u64,
    /// The position of the last event of the batch.
    pub last_position: i64,
    /// True when every event of the batch was already in the log (a retried
    /// append): nothing was written this time.
    pub already_appended: bool,
}

/// A batch of the log read forward.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogBatch {
    pub events: Vec<RecordedEvent>,
    /// Later events exist but wait for an older transaction still running:
    /// read again soon rather than waiting for the next wake-up.
    pub held_back: bool,
}
