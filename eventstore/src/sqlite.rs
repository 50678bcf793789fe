//! SQLite backend: a file in WAL mode, one writer connection (SQLite allows one
//! writer at a time anyway; queueing in the pool is cheaper than busy retries),
//! several readers.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::chain;
use crate::counters::Counters;
use crate::error::StoreError;
use crate::model::{
    Appended, EventData, ExpectedVersion, Fence, LogBatch, LogPosition, NewEvent, RecordedEvent,
    StreamAppend,
};
use crate::{
    EventStore, StoreCounts, by_stream, previously_appended, validate_append, validate_many,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    wake: Arc<watch::Sender<u64>>,
    counters: Counters,
}

/// Events per INSERT: 9 bound values each, under SQLite's 32,766.
const ROWS_PER_INSERT: usize = 3_000;

pub(crate) const COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash";

impl SqliteStore {
    /// A store on pools that `Database::open` configured (WAL, busy timeout).
    pub fn new(writer: SqlitePool, reader: SqlitePool) -> Self {
        let (wake, _) = watch::channel(0);
        SqliteStore {
            writer,
            reader,
            wake: Arc::new(wake),
            counters: Counters::default(),
        }
    }
}

pub(crate) fn decode(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |message: String| StoreError::Corrupt { position, message };
    let event_id: String = row.try_get("event_id")?;
    let data: String = row.try_get("data")?;
    let metadata: String = row.try_get("metadata")?;
    let version: i64 = row.try_get("stream_version")?;
    let schema_version: i64 = row.try_get("schema_version")?;
    Ok(RecordedEvent {
        position,
        commit: position,
        stream_id: row.try_get("stream_id")?,
        stream_version: u64::try_from(version).map_err(|e| corrupt(e.to_string()))?,
        event_id: Uuid::parse_str(&event_id).map_err(|e| corrupt(e.to_string()))?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(schema_version).map_err(|e| corrupt(e.to_string()))?,
        data: EventData::from_text(data).map_err(|e| corrupt(e.to_string()))?,
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt(e.to_string()))?,
        recorded_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
        hash: crate::chain::stored(row.try_get("hash")?, position)?,
    })
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("version {v} out of range")))
}

/// Append one batch inside the caller's write transaction.
async fn append_in(
    tx: &mut sqlx::SqliteConnection,
    stream: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    recorded_at: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    // Microseconds, as PostgreSQL keeps them: a log moved between the two
    // (`export`, `import`) has the same times.
    let recorded_at = recorded_at.trunc_subsecs(6);
    let ids = serde_json::to_string(
        &events
            .iter()
            .map(|e| e.event_id.to_string())
            .collect::<Vec<_>>(),
    )
    .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let found: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT event_id, stream_id, stream_version, position FROM events
         WHERE event_id IN (SELECT value FROM json_each(?))",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let found: Vec<_> = found
        .into_iter()
        .filter_map(|(id, s, v, p)| Uuid::parse_str(&id).ok().map(|id| (id, s, v, p)))
        .collect();
    if let Some(done) = previously_appended(stream, events.len(), &found)? {
        return Ok(done);
    }

    // The stream's version and last link, read under the write lock.
    let last: Option<(i64, Option<Vec<u8>>, i64)> = sqlx::query_as(
        "SELECT stream_version, hash, position FROM events WHERE stream_id = ?
         ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(stream)
    .fetch_optional(&mut *tx)
    .await?;
    let (current, mut link) = match last {
        None => (0, Some(chain::GENESIS)),
        Some((version, hash, position)) => (
            u64::try_from(version).unwrap_or(0),
            chain::stored(hash, position)?,
        ),
    };
    if let Some(required) = expected.required()
        && required != current
    {
        return Err(StoreError::Conflict {
            stream: stream.to_string(),
            expected,
            actual: current,
        });
    }

    let mut rows = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let metadata = serde_json::to_string(&e.metadata)
            .map_err(|err| StoreError::Invalid(err.to_string()))?;
        let content = e.content(stream, recorded_at).hash();
        // A stream not chained yet (before the backfill) stays unchained.
        link = link.map(|previous| chain::link(&previous, &content));
        rows.push((to_i64(current + i as u64 + 1)?, e, metadata, link));
    }
    // SQLite binds at most 32,766 values per statement: 9 per event.
    let mut last_position = 0;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at, hash) ",
        );
        insert.push_values(chunk, |mut b, (version, e, metadata, link)| {
            b.push_bind(stream)
                .push_bind(*version)
                .push_bind(e.event_id.to_string())
                .push_bind(e.event_type.as_str())
                .push_bind(i64::from(e.schema_version))
                .push_bind(e.data.to_string())
                .push_bind(metadata.as_str())
                .push_bind(recorded_at)
                .push_bind(link.map(|l| l.to_vec()));
        });
        insert.push(" RETURNING position");
        let positions: Vec<i64> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
        last_position = positions.into_iter().max().unwrap_or(0).max(last_position);
    }
    Ok(Appended {
        last_version: current + events.len() as u64,
        last_position,
        already_appended: false,
    })
}

impl SqliteStore {
    /// Append every batch or none, under `fence` when given. The write lock
    /// is taken first (IMMEDIATE), so neither the versions nor the lease's
    /// token can change before the insert.
    async fn append_checked(
        &self,
        fence: Option<&Fence>,
        appends: &[StreamAppend],
    ) -> Result<Vec<Appended>, StoreError> {
        validate_many(appends)?;
        let mut tx = crate::tx::begin_sqlite_writer(&self.writer).await?;
        if let Some(fence) = fence {
            let token: Option<i64> = sqlx::query_scalar("SELECT token FROM leases WHERE name = ?")
                .bind(&fence.lease)
                .fetch_optional(&mut *tx)
                .await?;
            if token != Some(fence.token) {
                return Err(StoreError::Fenced {
                    lease: fence.lease.clone(),
                    token: fence.token,
                });
            }
        }
        let recorded_at = Utc::now();
        let mut results = Vec::with_capacity(appends.len());
        for a in appends {
            results.push(append_in(&mut tx, &a.stream, a.expected, &a.events, recorded_at).await?);
        }
        if results.iter().any(|r| !r.already_appended) {
            tx.commit().await?;
            self.wake.send_modify(|n| *n = n.wrapping_add(1));
            self.counters.wrote(
                appends
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| !r.already_appended)
                    .map(|(a, _)| a.events.len())
                    .sum(),
            );
        }
        Ok(results)
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError> {
        validate_append(stream, events)?;
        // IMMEDIATE takes the write lock up front, so the version read cannot
        // go stale before the insert.
        let mut tx = crate::tx::begin_sqlite_writer(&self.writer).await?;
        let appended = append_in(&mut tx, stream, expected, events, Utc::now()).await?;
        if !appended.already_appended {
            tx.commit().await?;
            self.wake.send_modify(|n| *n = n.wrapping_add(1));
            self.counters.wrote(events.len());
        }
        Ok(appended)
    }

    async fn append_many(&self, appends: &[StreamAppend]) -> Result<Vec<Appended>, StoreError> {
        self.append_checked(None, appends).await
    }

    async fn append_fenced(
        &self,
        fence: &Fence,
        appends: &[StreamAppend],
    ) -> Result<Vec<Appended>, StoreError> {
        self.append_checked(Some(fence), appends).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version"
        );
        let rows = sqlx::query(&sql)
            .bind(stream)
            .bind(to_i64(from_version)?)
            .fetch_all(&self.reader)
            .await?;
        self.counters.read(rows.len());
        rows.iter().map(decode).collect()
    }

    async fn read_streams(
        &self,
        streams: &[String],
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        let names =
            serde_json::to_string(streams).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id IN (SELECT value FROM json_each(?))
             ORDER BY stream_id, stream_version"
        );
        let rows = sqlx::query(&sql)
            .bind(names)
            .fetch_all(&self.reader)
            .await?;
        self.counters.read(rows.len());
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(by_stream(streams, events))
    }

    async fn read_all(&self, after: LogPosition, limit: usize) -> Result<LogBatch, StoreError> {
        // One writer at a time: positions become visible in order, so the
        // position alone is the commit order.
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(after.position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?;
        self.counters.read(rows.len());
        Ok(LogBatch {
            events: rows.iter().map(decode).collect::<Result<_, _>>()?,
            held_back: false,
        })
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                .fetch_one(&self.reader)
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
