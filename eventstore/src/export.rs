//! The log as JSON Lines: one event per line, in log order, with everything
//! the store holds of it, so an auditor can take the history away and read
//! it with any tool. Read in batches, so memory stays flat however long the
//! log is.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::model::{LogPosition, Metadata};
use crate::{EventStore, StoreError};

/// Events read per batch.
const BATCH: usize = 1000;

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
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
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
    mut progress: impl FnMut(i64),
) -> Result<u64, ExportError> {
    let mut cursor = LogPosition::START;
    let mut written = 0;
    loop {
        let batch = store.read_all(cursor, BATCH).await?;
        let Some(last) = batch.events.last() else {
            break;
        };
        cursor = last.cursor();
        for e in batch
            .events
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
            };
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        progress(cursor.position);
    }
    out.flush()?;
    Ok(written)
}
