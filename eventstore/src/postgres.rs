//! PostgreSQL backend.
//!
//! Appends are one statement each, with no global lock: concurrent writers to
//! different streams never wait for each other, and writers of one stream race
//! on the `(stream_id, stream_version)` unique key.
//!
//! Readers of the whole log must never skip an event. Positions come from a
//! sequence at insert time, so transaction A can take position 5, transaction B
//! position 6, and B commit first: a reader that moved its checkpoint to 6
//! would never see 5. Every row therefore records its transaction id (`xid8`),
//! and readers return only rows of transactions older than the oldest one still
//! running (`pg_snapshot_xmin(pg_current_snapshot())`), in (transaction id,
//! position) order. A transaction below that horizon has ended, so nothing can
//! appear behind a reader's cursor later.
//!
//! Readers are woken after commit: in this process directly, in others by a
//! `NOTIFY` sent by a background task, coalesced so that a burst of appends
//! costs one notification and no append transaction waits on the notify queue
//! lock. A lost notification costs only latency: followers also poll.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::counters::Counters;
use crate::error::{StoreError, unique_violation};
use crate::model::{
    Appended, ExpectedVersion, Fence, LogBatch, LogPosition, Metadata, NewEvent, RecordedEvent,
    StreamAppend,
};
use crate::{
    EventStore, StoreCounts, by_stream, previously_appended, validate_append, validate_many,
};

/// The shortest gap between two notifications to other processes.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

/// How often an append retries when `Any` loses a version race.
const ANY_RETRIES: usize = 20;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    wake: Arc<watch::Sender<u64>>,
    notify: Arc<Notify>,
    counters: Counters,
    _tasks: Arc<Tasks>,
}

/// The notifier and listener tasks live as long as the last clone of the store.
#[derive(Debug)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Appends batches to one or more streams in one statement (so in one
/// transaction, one round trip and one commit): every stream's version is
/// checked against its expectation (NULL: any), and if one differs nothing is
/// inserted. Rows are inserted in the order given, so positions follow it.
/// Each event's link chains from its stream's last one read here: a writer
/// that raced on a stale link loses on the version's unique key.
const APPEND: &str = r#"
WITH fence AS MATERIALIZED (
    -- FOR SHARE: a take-over's token bump waits for this append's commit, and
    -- an append after the bump sees the new token.
    SELECT token FROM leases WHERE name = $10 FOR SHARE
), fenced AS (
    SELECT ($10::text IS NULL OR EXISTS (SELECT 1 FROM fence WHERE token = $11)) AS ok
), batch AS (
    SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::uuid[], $5::text[], $6::int4[], $7::jsonb[], $8::jsonb[], $12::bytea[])
        WITH ORDINALITY AS b(stream_id, expected, idx, event_id, event_type, schema_version, data, metadata, content, ord)
), current AS (
    -- Each stream's version and last link (chain.rs's GENESIS, 32 zero
    -- bytes, before its first event).
    SELECT s.stream_id, s.expected, COALESCE(last.stream_version, 0) AS version,
           CASE WHEN last.stream_version IS NULL THEN decode(repeat('00', 32), 'hex') ELSE last.hash END AS link
    FROM (SELECT DISTINCT stream_id, expected FROM batch) s
    LEFT JOIN LATERAL (
        SELECT e.stream_version, e.hash FROM events e
        WHERE e.stream_id = s.stream_id ORDER BY e.stream_version DESC LIMIT 1
    ) last ON true
), links AS (
    SELECT c.stream_id, l.idx, l.link
    FROM current c CROSS JOIN LATERAL UNNEST(event_hash_chain(
        c.link, ARRAY(SELECT b.content FROM batch b WHERE b.stream_id = c.stream_id ORDER BY b.idx)
    )) WITH ORDINALITY AS l(link, idx)
), inserted AS (
    INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
    SELECT b.stream_id, c.version + b.idx, b.event_id, b.event_type, b.schema_version, b.data, b.metadata, $9, l.link
    FROM batch b
    JOIN current c ON c.stream_id = b.stream_id
    JOIN links l ON l.stream_id = b.stream_id AND l.idx = b.idx
    WHERE NOT EXISTS (SELECT 1 FROM current WHERE expected IS NOT NULL AND expected <> version)
      AND (SELECT ok FROM fenced)
    ORDER BY b.ord
    RETURNING stream_id, position, stream_version
)
SELECT c.stream_id,
       c.version AS previous_version,
       (SELECT MAX(i.position) FROM inserted i WHERE i.stream_id = c.stream_id) AS last_position,
       (SELECT MAX(i.stream_version) FROM inserted i WHERE i.stream_id = c.stream_id) AS last_version,
       (SELECT ok FROM fenced) AS fence_ok
FROM current c
"#;

pub(crate) const COLUMNS: &str = "position, tx_id::text::int8 AS commit, stream_id, stream_version, event_id, \
                       event_type, schema_version, data, metadata, recorded_at, hash";

impl PgStore {
    /// A store on `pool`, waking readers through `channel` (one per deployment
    /// sharing a database; tests use one per schema).
    pub fn new(pool: PgPool, channel: &str) -> Self {
        let (wake, _) = watch::channel(0);
        let wake = Arc::new(wake);
        let notify = Arc::new(Notify::new());
        // Notifications carry the sender's id, so a process is not woken a
        // second time by its own commits.
        let instance = Uuid::new_v4().to_string();
        let tasks = vec![
            tokio::spawn(notifier(
                pool.clone(),
                channel.to_string(),
                instance.clone(),
                notify.clone(),
            )),
            tokio::spawn(listener(
                pool.clone(),
                channel.to_string(),
                instance,
                wake.clone(),
            )),
        ];
        PgStore {
            pool,
            counters: Counters::default(),
            wake,
            notify,
            _tasks: Arc::new(Tasks(tasks)),
        }
    }

    async fn existing(
        &self,
        stream: &str,
        events: &[NewEvent],
    ) -> Result<Option<Appended>, StoreError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let found: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
            "SELECT event_id, stream_id, stream_version, position FROM events WHERE event_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        previously_appended(stream, events.len(), &found)
    }

    async fn current_version(&self, stream: &str) -> Result<u64, StoreError> {
        let v: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1",
        )
        .bind(stream)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// When every part of an append is in the log already (a retry after a
    /// lost reply): their results.
    async fn all_existing(&self, parts: &[Part<'_>]) -> Result<Option<Vec<Appended>>, StoreError> {
        let mut results = Vec::with_capacity(parts.len());
        for (stream, _, events) in parts {
            match self.existing(stream, events).await? {
                Some(done) => results.push(done),
                None => return Ok(None),
            }
        }
        Ok(Some(results))
    }

    fn committed(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.notify.notify_one();
    }
}

pub(crate) fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |message: String| StoreError::Corrupt { position, message };
    let version: i64 = row.try_get("stream_version")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    let data: Json<Box<RawValue>> = row
        .try_get("data")
        .map_err(|e| corrupt(format!("data: {e}")))?;
    let metadata: Json<Metadata> = row
        .try_get("metadata")
        .map_err(|e| corrupt(format!("metadata: {e}")))?;
    Ok(RecordedEvent {
        position,
        commit: row.try_get("commit")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: u64::try_from(version).map_err(|e| corrupt(e.to_string()))?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(schema_version).map_err(|e| corrupt(e.to_string()))?,
        data: data.0.into(),
        metadata: metadata.0,
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
        hash: crate::chain::stored(row.try_get("hash")?, position)?,
    })
}

/// One stream's part of an append, borrowed.
type Part<'a> = (&'a str, ExpectedVersion, &'a [NewEvent]);

fn parts_of(appends: &[StreamAppend]) -> Vec<Part<'_>> {
    appends
        .iter()
        .map(|a| (a.stream.as_str(), a.expected, a.events.as_slice()))
        .collect()
}

/// The batches' columns as the arrays `APPEND` takes, one element per event.
#[derive(Default)]
struct Columns<'a> {
    streams: Vec<&'a str>,
    expected: Vec<Option<i64>>,
    index: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a Value>,
    metadata: Vec<Value>,
    /// Each event's content hash, for the statement to chain.
    contents: Vec<Vec<u8>>,
}

impl<'a> Columns<'a> {
    fn of(parts: &[Part<'a>], recorded_at: DateTime<Utc>) -> Result<Self, StoreError> {
        let mut c = Columns::default();
        for (stream, expected, events) in parts {
            let expected = expected
                .required()
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
            for (i, e) in events.iter().enumerate() {
                c.streams.push(stream);
                c.expected.push(expected);
                c.index.push(i as i64 + 1);
                c.ids.push(e.event_id);
                c.types.push(&e.event_type);
                c.schema_versions
                    .push(i32::try_from(e.schema_version).unwrap_or(i32::MAX));
                c.contents
                    .push(e.content(stream, recorded_at).hash().to_vec());
                c.data.push(&e.data);
                c.metadata.push(
                    serde_json::to_value(&e.metadata)
                        .map_err(|err| StoreError::Invalid(err.to_string()))?,
                );
            }
        }
        Ok(c)
    }
}

impl PgStore {
    /// Append every part or none, under `fence` when given, retrying races
    /// that `Any` expectations lost.
    async fn append_parts(
        &self,
        fence: Option<&Fence>,
        parts: &[Part<'_>],
    ) -> Result<Vec<Appended>, StoreError> {
        // Microseconds, as the column keeps them: the content hash covers
        // the time as it will be read back.
        let recorded_at = Utc::now().trunc_subsecs(6);
        let columns = Columns::of(parts, recorded_at)?;
        for _ in 0..ANY_RETRIES {
            let outcome = sqlx::query(APPEND)
                .bind(&columns.streams)
                .bind(&columns.expected)
                .bind(&columns.index)
                .bind(&columns.ids)
                .bind(&columns.types)
                .bind(&columns.schema_versions)
                .bind(&columns.data)
                .bind(&columns.metadata)
                .bind(recorded_at)
                .bind(fence.map(|f| f.lease.as_str()))
                .bind(fence.map(|f| f.token))
                .bind(&columns.contents)
                .fetch_all(&self.pool)
                .await;
            let rows = match outcome {
                Ok(rows) => rows,
                Err(error) => {
                    let Some(constraint) = unique_violation(&error) else {
                        // Not a race: the original error, without more
                        // queries to a database that may be gone.
                        return Err(error.into());
                    };
                    // A resend of events already appended is a success.
                    if let Some(done) = self.all_existing(parts).await? {
                        return Ok(done);
                    }
                    // A concurrent writer took a version first.
                    if constraint == "events_stream_version_key" {
                        if parts.iter().any(|(_, e, _)| e.required().is_none()) {
                            continue;
                        }
                        return Err(self.conflict(parts).await?);
                    }
                    return Err(self.reused_id(parts).await);
                }
            };
            let fenced_out = rows
                .iter()
                .any(|r| r.try_get::<bool, _>("fence_ok").is_ok_and(|ok| !ok));
            if let (true, Some(fence)) = (fenced_out, fence) {
                return Err(StoreError::Fenced {
                    lease: fence.lease.clone(),
                    token: fence.token,
                });
            }
            // One row per stream: its version before, and what was inserted.
            let mut outcomes = Vec::with_capacity(parts.len());
            for (stream, _, _) in parts {
                let row = rows
                    .iter()
                    .find(|r| {
                        r.try_get::<String, _>("stream_id")
                            .is_ok_and(|s| s == *stream)
                    })
                    .ok_or_else(|| StoreError::Invalid(format!("no result for stream {stream}")))?;
                let previous: i64 = row.try_get("previous_version")?;
                let last_position: Option<i64> = row.try_get("last_position")?;
                let last_version: Option<i64> = row.try_get("last_version")?;
                outcomes.push((
                    u64::try_from(previous).unwrap_or(0),
                    last_position.zip(last_version),
                ));
            }
            if outcomes.iter().all(|(_, inserted)| inserted.is_some()) {
                self.committed();
                self.counters
                    .wrote(parts.iter().map(|(_, _, events)| events.len()).sum());
                return Ok(outcomes
                    .into_iter()
                    .filter_map(|(_, inserted)| inserted)
                    .map(|(last_position, last_version)| Appended {
                        last_version: u64::try_from(last_version).unwrap_or(0),
                        last_position,
                        already_appended: false,
                    })
                    .collect());
            }
            // Nothing was inserted: a version differed. A retry of an append
            // that landed, or a real conflict.
            if let Some(done) = self.all_existing(parts).await? {
                return Ok(done);
            }
            let mismatch = parts
                .iter()
                .zip(&outcomes)
                .find(|((_, expected, _), (previous, _))| {
                    expected.required().is_some_and(|v| v != *previous)
                });
            return Err(match mismatch {
                Some(((stream, expected, _), (previous, _))) => StoreError::Conflict {
                    stream: stream.to_string(),
                    expected: *expected,
                    actual: *previous,
                },
                None => self.conflict(parts).await?,
            });
        }
        Err(self.conflict(parts).await?)
    }

    /// The conflict of the first part whose stream is not where it was expected.
    async fn conflict(&self, parts: &[Part<'_>]) -> Result<StoreError, StoreError> {
        for (stream, expected, _) in parts {
            let actual = self.current_version(stream).await?;
            if expected.required().is_none_or(|v| v != actual) {
                return Ok(StoreError::Conflict {
                    stream: stream.to_string(),
                    expected: *expected,
                    actual,
                });
            }
        }
        let (stream, expected, _) =
            parts
                .first()
                .copied()
                .unwrap_or(("", ExpectedVersion::Any, &[]));
        Ok(StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: self.current_version(stream).await?,
        })
    }

    /// The error for an event id already in the log outside this append.
    async fn reused_id(&self, parts: &[Part<'_>]) -> StoreError {
        for (stream, _, events) in parts {
            match self.existing(stream, events).await {
                Err(e) => return e,
                Ok(Some(_)) => {
                    return StoreError::EventIdReused {
                        event_id: events.first().map(|e| e.event_id).unwrap_or_default(),
                        stream: stream.to_string(),
                    };
                }
                Ok(None) => {}
            }
        }
        StoreError::Invalid("an event id of this append is already in the log".into())
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError> {
        validate_append(stream, events)?;
        let mut results = self
            .append_parts(None, &[(stream, expected, events)])
            .await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Invalid("no result for the append".into()))
    }

    async fn append_many(&self, appends: &[StreamAppend]) -> Result<Vec<Appended>, StoreError> {
        validate_many(appends)?;
        self.append_parts(None, &parts_of(appends)).await
    }

    async fn append_fenced(
        &self,
        fence: &Fence,
        appends: &[StreamAppend],
    ) -> Result<Vec<Appended>, StoreError> {
        validate_many(appends)?;
        self.append_parts(Some(fence), &parts_of(appends)).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version"
        );
        let rows = sqlx::query(&sql)
            .bind(stream)
            .bind(i64::try_from(from_version).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        self.counters.read(rows.len());
        rows.iter().map(decode).collect()
    }

    async fn read_streams(
        &self,
        streams: &[String],
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        // A lateral lookup per stream keeps each one an index scan, whatever
        // generic plan a prepared `= ANY($1)` would settle on.
        let sql = format!(
            "SELECT e.* FROM UNNEST($1::text[]) AS s(name)
             CROSS JOIN LATERAL (
                 SELECT {COLUMNS} FROM events WHERE stream_id = s.name ORDER BY stream_version
             ) e"
        );
        let rows = sqlx::query(&sql)
            .bind(streams)
            .fetch_all(&self.pool)
            .await?;
        self.counters.read(rows.len());
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(by_stream(streams, events))
    }

    async fn read_all(&self, after: LogPosition, limit: usize) -> Result<LogBatch, StoreError> {
        // Read in commit order without the horizon filter, then cut at the
        // first row of a transaction that may still have company on its way:
        // rows below the horizon sort first, so what is kept is a prefix, and
        // one query tells both what is safe and whether more is waiting.
        let sql = format!(
            "SELECT {COLUMNS}, pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS horizon
             FROM events
             WHERE (tx_id, position) > ($1::int8::text::xid8, $2)
             ORDER BY tx_id, position
             LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.commit)
            .bind(after.position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        self.counters.read(rows.len());
        let mut batch = LogBatch::default();
        for row in &rows {
            let commit: i64 = row.try_get("commit")?;
            let horizon: i64 = row.try_get("horizon")?;
            if commit >= horizon {
                batch.held_back = true;
                break;
            }
            batch.events.push(decode(row)?);
        }
        Ok(batch)
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        Ok(
            // The newest commit's last event: the primary key's last entry.
            sqlx::query_scalar(
                "SELECT COALESCE((SELECT position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1), 0)",
            )
            .fetch_one(&self.pool)
            .await?,
        )
    }

    fn counts(&self) -> StoreCounts {
        self.counters.counts()
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

/// Sends one `NOTIFY` per burst of local commits, outside any append
/// transaction, and at most one per `NOTIFY_INTERVAL`: under load that is one
/// notification for many appends, at a cost of a few milliseconds of latency
/// for other replicas (this process's readers are woken directly).
async fn notifier(pool: PgPool, channel: String, instance: String, signal: Arc<Notify>) {
    loop {
        signal.notified().await;
        tokio::time::sleep(NOTIFY_INTERVAL).await;
        // A notification needs no durability: without waiting for the WAL
        // flush its commit costs no fsync (set for this statement only).
        let sql = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)";
        if let Err(error) = sqlx::query(sql)
            .bind(&channel)
            .bind(&instance)
            .execute(&pool)
            .await
        {
            // Other processes fall back to polling; nothing is lost.
            tracing::warn!(%error, "could not notify other processes of new events");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Wakes this process's readers when another process commits.
async fn listener(pool: PgPool, channel: String, instance: String, wake: Arc<watch::Sender<u64>>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            // A server that takes no connection is said, with its reason,
            // by whatever needed the database (migrations, readiness).
            Err(error @ sqlx::Error::PoolTimedOut) => {
                tracing::debug!(%error, "cannot LISTEN for new events yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for new events; polling only");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(&channel).await {
            tracing::warn!(%error, "cannot LISTEN for new events; polling only");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(n) if n.payload() == instance => {}
                Ok(_) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => {
                    tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
                    break;
                }
            }
        }
    }
}
