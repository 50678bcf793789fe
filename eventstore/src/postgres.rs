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
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{PgPool, Row};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::{StoreError, unique_violation};
use crate::model::{
    Appended, ExpectedVersion, LogBatch, LogPosition, NewEvent, RecordedEvent, StreamAppend,
};
use crate::{EventStore, previously_appended, validate_append, validate_many};

/// The shortest gap between two notifications to other processes.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

/// How often an append retries when `Any` loses a version race.
const ANY_RETRIES: usize = 20;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    wake: Arc<watch::Sender<u64>>,
    notify: Arc<Notify>,
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

const APPEND: &str = r#"
WITH current AS (
    SELECT COALESCE(MAX(stream_version), 0) AS version FROM events WHERE stream_id = $1
), inserted AS (
    INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at)
    SELECT $1, current.version + batch.ordinal, batch.event_id, batch.event_type,
           batch.schema_version, batch.data, batch.metadata, $7
    FROM current,
         UNNEST($2::uuid[], $3::text[], $4::int4[], $5::jsonb[], $6::jsonb[])
             WITH ORDINALITY AS batch(event_id, event_type, schema_version, data, metadata, ordinal)
    WHERE $8::int8 IS NULL OR current.version = $8
    RETURNING position, stream_version
)
SELECT current.version AS previous_version,
       (SELECT MAX(position) FROM inserted) AS last_position,
       (SELECT MAX(stream_version) FROM inserted) AS last_version
FROM current
"#;

const COLUMNS: &str = "position, tx_id::text::int8 AS commit, stream_id, stream_version, event_id, \
                       event_type, schema_version, data, metadata, recorded_at";

impl PgStore {
    /// A store on `pool`, waking readers through `channel` (one per deployment
    /// sharing a database; tests use one per schema).
    pub fn new(pool: PgPool, channel: &str) -> Self {
        let (wake, _) = watch::channel(0);
        let wake = Arc::new(wake);
        let notify = Arc::new(Notify::new());
        let tasks = vec![
            tokio::spawn(notifier(pool.clone(), channel.to_string(), notify.clone())),
            tokio::spawn(listener(pool.clone(), channel.to_string(), wake.clone())),
        ];
        PgStore {
            pool,
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

    /// After a unique violation: the batch landed before (`Some`), or a race
    /// lost by an `Any` append worth retrying (`None`), or an error.
    async fn after_violation(
        &self,
        error: sqlx::Error,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Option<Appended>, StoreError> {
        let Some(constraint) = unique_violation(&error) else {
            return Err(error.into());
        };
        if let Some(done) = self.existing(stream, events).await? {
            return Ok(Some(done));
        }
        if constraint != "events_stream_version_key" {
            return Err(error.into());
        }
        if expected.required().is_none() {
            return Ok(None);
        }
        Err(StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: self.current_version(stream).await?,
        })
    }

    /// When every batch of an atomic append is in the log already (a retry
    /// after a lost reply): their results.
    async fn all_existing(
        &self,
        appends: &[StreamAppend],
    ) -> Result<Option<Vec<Appended>>, StoreError> {
        let mut results = Vec::with_capacity(appends.len());
        for a in appends {
            match self.existing(&a.stream, &a.events).await? {
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

fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |message: String| StoreError::Corrupt { position, message };
    let version: i64 = row.try_get("stream_version")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    let metadata: Value = row.try_get("metadata")?;
    Ok(RecordedEvent {
        position,
        commit: row.try_get("commit")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: u64::try_from(version).map_err(|e| corrupt(e.to_string()))?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(schema_version).map_err(|e| corrupt(e.to_string()))?,
        data: row.try_get("data")?,
        metadata: serde_json::from_value(metadata).map_err(|e| corrupt(e.to_string()))?,
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
    })
}

/// A batch's columns as the arrays `APPEND` takes.
struct Columns<'a> {
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a Value>,
    metadata: Vec<Value>,
}

impl<'a> Columns<'a> {
    fn of(events: &'a [NewEvent]) -> Result<Self, StoreError> {
        Ok(Columns {
            ids: events.iter().map(|e| e.event_id).collect(),
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            schema_versions: events
                .iter()
                .map(|e| i32::try_from(e.schema_version).unwrap_or(i32::MAX))
                .collect(),
            data: events.iter().map(|e| &e.data).collect(),
            metadata: events
                .iter()
                .map(|e| serde_json::to_value(&e.metadata))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
        })
    }
}

/// What one `APPEND` statement did.
enum Statement {
    Inserted(Appended),
    /// The stream was at this version, not the expected one.
    Mismatch(u64),
}

async fn append_statement<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    stream: &str,
    expected: ExpectedVersion,
    columns: &Columns<'_>,
    recorded_at: DateTime<Utc>,
) -> Result<Statement, sqlx::Error> {
    let required = expected
        .required()
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let row = sqlx::query(APPEND)
        .bind(stream)
        .bind(&columns.ids)
        .bind(&columns.types)
        .bind(&columns.schema_versions)
        .bind(&columns.data)
        .bind(&columns.metadata)
        .bind(recorded_at)
        .bind(required)
        .fetch_one(executor)
        .await?;
    let last_position: Option<i64> = row.try_get("last_position")?;
    Ok(match last_position {
        Some(last_position) => {
            let last_version: i64 = row.try_get("last_version")?;
            Statement::Inserted(Appended {
                last_version: u64::try_from(last_version).unwrap_or(0),
                last_position,
                already_appended: false,
            })
        }
        None => {
            let previous: i64 = row.try_get("previous_version")?;
            Statement::Mismatch(u64::try_from(previous).unwrap_or(0))
        }
    })
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
        let columns = Columns::of(events)?;
        let recorded_at = Utc::now();
        for _ in 0..ANY_RETRIES {
            // One statement, no explicit transaction: the common case costs one round trip.
            match append_statement(&self.pool, stream, expected, &columns, recorded_at).await {
                Ok(Statement::Inserted(appended)) => {
                    self.committed();
                    return Ok(appended);
                }
                // The version did not match: a retry of a batch that landed,
                // or a real conflict.
                Ok(Statement::Mismatch(actual)) => {
                    if let Some(done) = self.existing(stream, events).await? {
                        return Ok(done);
                    }
                    return Err(StoreError::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual,
                    });
                }
                Err(error) => match self
                    .after_violation(error, stream, expected, events)
                    .await?
                {
                    Some(done) => return Ok(done),
                    None => continue,
                },
            }
        }
        Err(StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: self.current_version(stream).await?,
        })
    }

    async fn append_many(&self, appends: &[StreamAppend]) -> Result<Vec<Appended>, StoreError> {
        validate_many(appends)?;
        let columns = appends
            .iter()
            .map(|a| Columns::of(&a.events))
            .collect::<Result<Vec<_>, _>>()?;
        let recorded_at = Utc::now();
        'attempt: for _ in 0..ANY_RETRIES {
            let mut tx = self.pool.begin().await?;
            let mut results = Vec::with_capacity(appends.len());
            for (a, columns) in appends.iter().zip(&columns) {
                match append_statement(&mut *tx, &a.stream, a.expected, columns, recorded_at).await
                {
                    Ok(Statement::Inserted(appended)) => results.push(appended),
                    Ok(Statement::Mismatch(actual)) => {
                        drop(tx);
                        if let Some(done) = self.all_existing(appends).await? {
                            return Ok(done);
                        }
                        return Err(StoreError::Conflict {
                            stream: a.stream.clone(),
                            expected: a.expected,
                            actual,
                        });
                    }
                    Err(error) => {
                        drop(tx);
                        if let Some(done) = self.all_existing(appends).await? {
                            return Ok(done);
                        }
                        match unique_violation(&error).as_deref() {
                            Some("events_stream_version_key")
                                if a.expected.required().is_none() =>
                            {
                                continue 'attempt;
                            }
                            Some("events_stream_version_key") => {
                                return Err(StoreError::Conflict {
                                    stream: a.stream.clone(),
                                    expected: a.expected,
                                    actual: self.current_version(&a.stream).await?,
                                });
                            }
                            Some(_) => {
                                return Err(StoreError::EventIdReused {
                                    event_id: a
                                        .events
                                        .first()
                                        .map(|e| e.event_id)
                                        .unwrap_or_default(),
                                    stream: a.stream.clone(),
                                });
                            }
                            None => return Err(error.into()),
                        }
                    }
                }
            }
            tx.commit().await?;
            self.committed();
            return Ok(results);
        }
        Err(StoreError::Invalid(format!(
            "{} appends with `any` kept losing version races",
            appends.len()
        )))
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
        rows.iter().map(decode).collect()
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

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

/// Sends one `NOTIFY` per burst of local commits, outside any append
/// transaction, and at most one per `NOTIFY_INTERVAL`: under load that is one
/// notification for many appends, at a cost of a few milliseconds of latency
/// for other replicas (this process's readers are woken directly).
async fn notifier(pool: PgPool, channel: String, signal: Arc<Notify>) {
    loop {
        signal.notified().await;
        tokio::time::sleep(NOTIFY_INTERVAL).await;
        // A notification needs no durability: without waiting for the WAL
        // flush its commit costs no fsync (set for this statement only).
        let sql = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')";
        if let Err(error) = sqlx::query(sql).bind(&channel).execute(&pool).await {
            // Other processes fall back to polling; nothing is lost.
            tracing::warn!(%error, "could not notify other processes of new events");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Wakes this process's readers when another process commits.
async fn listener(pool: PgPool, channel: String, wake: Arc<watch::Sender<u64>>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
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
                Ok(_) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => {
                    tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
                    break;
                }
            }
        }
    }
}
