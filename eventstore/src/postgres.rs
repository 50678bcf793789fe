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
use crate::model::{Appended, ExpectedVersion, LogBatch, LogPosition, NewEvent, RecordedEvent};
use crate::{EventStore, previously_appended, validate_append};

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

#[async_trait]
impl EventStore for PgStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError> {
        validate_append(stream, events)?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let schema_versions: Vec<i32> = events
            .iter()
            .map(|e| i32::try_from(e.schema_version).unwrap_or(i32::MAX))
            .collect();
        let data: Vec<&Value> = events.iter().map(|e| &e.data).collect();
        let metadata = events
            .iter()
            .map(|e| serde_json::to_value(&e.metadata))
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let required = expected
            .required()
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let recorded_at = Utc::now();

        for _ in 0..ANY_RETRIES {
            let outcome = sqlx::query(APPEND)
                .bind(stream)
                .bind(&ids)
                .bind(&types)
                .bind(&schema_versions)
                .bind(&data)
                .bind(&metadata)
                .bind(recorded_at)
                .bind(required)
                .fetch_one(&self.pool)
                .await;
            match outcome {
                Ok(row) => {
                    let last_position: Option<i64> = row.try_get("last_position")?;
                    if let Some(last_position) = last_position {
                        let last_version: i64 = row.try_get("last_version")?;
                        self.committed();
                        return Ok(Appended {
                            last_version: u64::try_from(last_version).unwrap_or(0),
                            last_position,
                            already_appended: false,
                        });
                    }
                    // The version did not match: a retry of a batch that landed,
                    // or a real conflict.
                    if let Some(done) = self.existing(stream, events).await? {
                        return Ok(done);
                    }
                    let previous: i64 = row.try_get("previous_version")?;
                    return Err(StoreError::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual: u64::try_from(previous).unwrap_or(0),
                    });
                }
                Err(error) => {
                    let Some(constraint) = unique_violation(&error) else {
                        return Err(error.into());
                    };
                    if let Some(done) = self.existing(stream, events).await? {
                        return Ok(done);
                    }
                    if constraint == "events_stream_version_key" && required.is_none() {
                        continue;
                    }
                    if constraint == "events_stream_version_key" {
                        return Err(StoreError::Conflict {
                            stream: stream.to_string(),
                            expected,
                            actual: self.current_version(stream).await?,
                        });
                    }
                    return Err(error.into());
                }
            }
        }
        Err(StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: self.current_version(stream).await?,
        })
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
