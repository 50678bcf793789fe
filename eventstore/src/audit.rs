//! The log for auditors. [`export`] writes it as JSON Lines: one event per
//! line, in log order, with everything the store holds of it (its chain link
//! too), so an auditor can take the history away and read it with any tool,
//! and so a log can move between databases ([`import`] writes an export into
//! an empty one, positions and all, refusing one whose chains do not hold).
//! [`verify`] and [`verify_export`] recompute every stream's hash chain
//! (`chain`), in the database or in an export. All read and write in
//! batches; memory grows only with the number of streams.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::chain::{self, Content, GENESIS, Hash, Verification, Verifier};
use crate::model::{LogPosition, Metadata, RecordedEvent};
use crate::{Database, EventStore, StoreError, Tx};

/// Events read per batch.
const BATCH: usize = 1000;

/// How long an export waits for events held back by a transaction still
/// running before it gives up.
const HELD_BACK_PATIENCE: Duration = Duration::from_secs(60);

/// Which events to export; all by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The first position exported.
    pub from: Option<i64>,
    /// The last position exported.
    pub to: Option<i64>,
    /// Only streams whose name starts with this (`run-`, `pr-`, `catalogue`).
    pub stream_prefix: Option<String>,
}

impl Filter {
    fn keeps(&self, position: i64, stream: &str) -> bool {
        self.from.is_none_or(|from| position >= from)
            && self.to.is_none_or(|to| position <= to)
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|prefix| stream.starts_with(prefix))
    }
}

/// One line of an export.
#[derive(Debug, Serialize)]
struct Line<'a> {
    position: i64,
    stream: &'a str,
    version: u64,
    id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema_version: u32,
    data: &'a RawValue,
    metadata: &'a Metadata,
    recorded_at: DateTime<Utc>,
    /// The event's link in its stream's chain, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "events after position {after} stayed held back for {seconds} s by a transaction still running on the database: export again when it has ended"
    )]
    HeldBack { after: i64, seconds: u64 },
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Write the events `filter` keeps to `out`, one JSON object per line;
/// `progress` is told the position reached after each batch. Returns how
/// many events were written.
pub async fn export(
    store: &dyn EventStore,
    filter: &Filter,
    out: &mut impl Write,
    progress: impl FnMut(i64),
) -> Result<u64, ExportError> {
    let mut written = 0;
    read_log(
        store,
        |events| {
            for e in events
                .iter()
                .filter(|e| filter.keeps(e.position, &e.stream_id))
            {
                let line = Line {
                    position: e.position,
                    stream: &e.stream_id,
                    version: e.stream_version,
                    id: e.event_id,
                    event_type: &e.event_type,
                    schema_version: e.schema_version,
                    data: e.data.as_raw(),
                    metadata: &e.metadata,
                    recorded_at: e.recorded_at,
                    hash: e.hash.map(hex::encode),
                };
                serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
                written += 1;
            }
            Ok(())
        },
        progress,
    )
    .await?;
    out.flush()?;
    Ok(written)
}

/// Recompute every stream's chain in the log, reading it in order;
/// `progress` is told the position reached after each batch.
pub async fn verify(
    store: &dyn EventStore,
    progress: impl FnMut(i64),
) -> Result<Verification, ExportError> {
    let mut verifier = Verifier::default();
    read_log(
        store,
        |events| {
            for e in events {
                let data = e.data.to_value();
                verifier.check(&e.content(&data), e.stream_version, e.position, e.hash);
            }
            Ok(())
        },
        progress,
    )
    .await?;
    Ok(verifier.finish())
}

/// Hand the whole log to `each`, batch by batch in log order.
async fn read_log(
    store: &dyn EventStore,
    mut each: impl FnMut(&[RecordedEvent]) -> Result<(), ExportError>,
    mut progress: impl FnMut(i64),
) -> Result<(), ExportError> {
    let mut cursor = LogPosition::START;
    let mut held_since: Option<Instant> = None;
    loop {
        let batch = store.read_all(cursor, BATCH).await?;
        let Some(last) = batch.events.last() else {
            // Events committed behind a transaction still running (on
            // PostgreSQL) are held back from every reader until it ends;
            // the reader waits for them rather than stop short of them.
            if batch.held_back {
                let since = *held_since.get_or_insert_with(Instant::now);
                if since.elapsed() > HELD_BACK_PATIENCE {
                    return Err(ExportError::HeldBack {
                        after: cursor.position,
                        seconds: HELD_BACK_PATIENCE.as_secs(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            return Ok(());
        };
        held_since = None;
        cursor = last.cursor();
        each(&batch.events)?;
        progress(cursor.position);
    }
}

/// One line of an export, as read back.
#[derive(Debug, Deserialize)]
struct Imported {
    position: i64,
    stream: String,
    version: u64,
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    data: Box<RawValue>,
    metadata: Metadata,
    recorded_at: DateTime<Utc>,
    /// Absent in an export of a log without chains.
    #[serde(default)]
    hash: Option<String>,
}

impl Imported {
    fn parse(line: &str, line_number: u64) -> Result<(Imported, Value), ImportError> {
        let refuse = |e: serde_json::Error| ImportError::Line {
            line: line_number,
            message: e.to_string(),
        };
        let event: Imported = serde_json::from_str(line).map_err(refuse)?;
        let data = serde_json::from_str(event.data.get()).map_err(refuse)?;
        Ok((event, data))
    }

    fn content<'a>(&'a self, data: &'a Value) -> Content<'a> {
        Content {
            stream: &self.stream,
            event_id: self.id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            data,
            metadata: &self.metadata,
            recorded_at: self.recorded_at,
        }
    }

    /// Its link as the line gives it: absent, or 32 bytes in hex.
    fn link(&self, line_number: u64) -> Result<Option<Hash>, ImportError> {
        self.hash
            .as_deref()
            .map(|text| {
                hex::decode(text)
                    .ok()
                    .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                    .ok_or_else(|| ImportError::Line {
                        line: line_number,
                        message: format!("hash {text:?} is not 64 hex digits"),
                    })
            })
            .transpose()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "the database's log is not empty (its head is at position {head}): import into a new database"
    )]
    NotEmpty { head: i64 },
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("reading the export: {0}")]
    Read(#[from] std::io::Error),
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
    #[error("writing the log: {0}")]
    Database(#[from] sqlx::Error),
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOutcome {
    pub events: u64,
    /// Whether the export carried its links and each was checked; false for
    /// an export of a build before chains, linked as it was imported, which
    /// shows nothing of what happened to it before.
    pub verified: bool,
}

/// Write an export into `db`, whose log must be empty: every event keeps its
/// position, stream, version, id, data, metadata and time, and its link,
/// checked against the content (an export whose links do not hold is
/// refused). All of it lands in one transaction or none does. `progress` is told how many events are
/// written (not yet committed) after each batch. Read models are not
/// touched: rebuild them after.
pub async fn import(
    db: &Database,
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<ImportOutcome, ImportError> {
    let mut tx = Tx::begin(&db.pool).await?;
    // Nothing else appends until this commits (SQLite's write lock is taken
    // by the transaction already), and the log is checked empty under it.
    let head: i64 = match &mut tx {
        Tx::Postgres(t) => {
            sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                .execute(&mut **t)
                .await?;
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                .fetch_one(&mut **t)
                .await?
        }
        Tx::Sqlite(t) => {
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                .fetch_one(&mut **t)
                .await?
        }
    };
    if head > 0 {
        return Err(ImportError::NotEmpty { head });
    }
    let mut batch = Vec::with_capacity(BATCH);
    let mut imported = 0;
    let mut last_position = 0;
    // What makes a log: each stream's versions 1, 2, 3… in order, each
    // position once, and chains that hold. A window of an export (`--from`,
    // `--to`) is not one.
    let mut streams: HashMap<String, (u64, Hash)> = HashMap::new();
    let mut positions: HashSet<i64> = HashSet::new();
    let mut linked: Option<bool> = None;
    for (n, line) in input.lines().enumerate() {
        let line_number = n as u64 + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (event, data) = Imported::parse(&line, line_number)?;
        let refuse = |message: String| ImportError::Line {
            line: line_number,
            message,
        };
        if event.position <= 0 || event.schema_version == 0 {
            return Err(refuse("position and schema_version start at 1".into()));
        }
        if !positions.insert(event.position) {
            return Err(refuse(format!(
                "position {} is there twice",
                event.position
            )));
        }
        let (last_version, previous) = streams.get(&event.stream).copied().unwrap_or((0, GENESIS));
        let expected = last_version + 1;
        if event.version != expected {
            return Err(refuse(format!(
                "stream {} goes to version {} where {expected} was due: import a whole export, \
                 not a window of one",
                event.stream, event.version
            )));
        }
        let link = chain::link(&previous, &event.content(&data).hash());
        let given = event.link(line_number)?;
        // All lines carry their links, or none do (an export of a build
        // before chains): a line without one among linked ones was stripped.
        match (*linked.get_or_insert(given.is_some()), given.is_some()) {
            (true, false) => {
                return Err(refuse(format!(
                    "stream {} version {} has no hash where the lines before had theirs: \
                     the export was altered",
                    event.stream, event.version
                )));
            }
            (false, true) => {
                return Err(refuse(format!(
                    "stream {} version {} has a hash where the lines before had none",
                    event.stream, event.version
                )));
            }
            _ => {}
        }
        if given.is_some_and(|given| given != link) {
            return Err(refuse(format!(
                "stream {} version {}: its hash does not follow from its content and the event \
                 before it; the export was altered (`audit verify FILE` names every broken stream)",
                event.stream, event.version
            )));
        }
        streams.insert(event.stream.clone(), (event.version, link));
        last_position = last_position.max(event.position);
        batch.push((event, link));
        if batch.len() == BATCH {
            imported += insert(&mut tx, &batch).await?;
            batch.clear();
            progress(imported);
        }
    }
    imported += insert(&mut tx, &batch).await?;
    if let Tx::Postgres(t) = &mut tx {
        // Appends after the import go on after its last position.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), GREATEST($1, 1), $1 > 0)",
        )
        .bind(last_position)
        .execute(&mut **t)
        .await?;
    }
    tx.commit().await?;
    progress(imported);
    Ok(ImportOutcome {
        events: imported,
        verified: linked.unwrap_or(true),
    })
}

async fn insert(tx: &mut Tx<'_>, batch: &[(Imported, Hash)]) -> Result<u64, ImportError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let events: Vec<&Imported> = batch.iter().map(|(e, _)| e).collect();
    let links: Vec<Vec<u8>> = batch.iter().map(|(_, link)| link.to_vec()).collect();
    let metadata: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(&e.metadata))
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let version = |e: &&Imported| i64::try_from(e.version).unwrap_or(i64::MAX);
    let events = events.as_slice();
    let inserted = match tx {
        Tx::Postgres(t) => sqlx::query(
            "INSERT INTO events (position, stream_id, stream_version, event_id, event_type,
                     schema_version, data, metadata, recorded_at, hash)
                 OVERRIDING SYSTEM VALUE
                 SELECT p, s, v, id, ty, sv, d::jsonb, m::jsonb, r, h
                 FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::uuid[], $5::text[],
                             $6::int4[], $7::text[], $8::text[], $9::timestamptz[], $10::bytea[])
                      AS t(p, s, v, id, ty, sv, d, m, r, h)",
        )
        .bind(events.iter().map(|e| e.position).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(version).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| i32::try_from(e.schema_version).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.data.get()).collect::<Vec<_>>())
        .bind(&metadata)
        .bind(events.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
        .bind(&links)
        .execute(&mut **t)
        .await?
        .rows_affected(),
        Tx::Sqlite(t) => {
            let mut inserted = 0;
            // Ten binds per event, under SQLite's limit of 32,766.
            let rows: Vec<_> = events.iter().zip(&metadata).zip(&links).collect();
            for chunk in rows.chunks(500) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO events (position, stream_id, stream_version, event_id, event_type,
                         schema_version, data, metadata, recorded_at, hash) ",
                );
                q.push_values(chunk, |mut b, ((e, m), link)| {
                    b.push_bind(e.position)
                        .push_bind(&e.stream)
                        .push_bind(version(e))
                        .push_bind(e.id.to_string())
                        .push_bind(&e.event_type)
                        .push_bind(i64::from(e.schema_version))
                        .push_bind(e.data.get())
                        .push_bind(*m)
                        .push_bind(e.recorded_at)
                        .push_bind(*link);
                });
                inserted += q.build().execute(&mut **t).await?.rows_affected();
            }
            inserted
        }
    };
    Ok(inserted)
}

/// Recompute every stream's chain in an export (JSON Lines, as [`export`]
/// writes them), offline; `progress` is told how many events were read.
pub fn verify_export(
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<Verification, ImportError> {
    let mut verifier = Verifier::default();
    for (n, line) in input.lines().enumerate() {
        let line_number = n as u64 + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (event, data) = Imported::parse(&line, line_number)?;
        let stored = event.link(line_number)?;
        verifier.check(&event.content(&data), event.version, event.position, stored);
        if line_number.is_multiple_of(BATCH as u64) {
            progress(line_number);
        }
    }
    Ok(verifier.finish())
}
