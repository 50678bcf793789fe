//! Links for the events written before hash chains (migration 20, which
//! leaves them NULL: SQL cannot rebuild an event's canonical JSON). Computed
//! once, right after migrating, stream by stream in version order, while
//! appends wait, and marked done in `event_chains`: after that, a NULL link
//! is an event that lost it, which `audit verify` names, never one to link
//! again (that would launder an edit).
//!
//! Replicas of a build before chains append unlinked events: upgrade them
//! all together.

use crate::chain::{self, GENESIS, Hash};
use crate::{Database, RecordedEvent, StoreError, Tx, on_pool};

/// Events linked per round trip.
const PAGE: i64 = 1000;

/// Link every event that has no link yet, once per database; returns how
/// many were linked.
pub(crate) async fn link_unchained(db: &Database) -> Result<u64, StoreError> {
    let done = "SELECT EXISTS (SELECT 1 FROM event_chains)";
    let linked_before: bool = on_pool!(&db.pool, p => sqlx::query_scalar(done).fetch_one(p).await?);
    if linked_before {
        return Ok(0);
    }
    let mut tx = Tx::begin(&db.pool).await?;
    if let Tx::Postgres(t) = &mut tx {
        // Readers go on; appends (and another replica's backfill) wait.
        sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
            .execute(&mut **t)
            .await?;
    }
    // Another process may have linked them while this one waited.
    let linked_before: bool =
        crate::on_tx!(&mut tx, c => sqlx::query_scalar(done).fetch_one(c).await?);
    if linked_before {
        return Ok(0);
    }
    let mut linked = 0;
    let mut after = (String::new(), 0i64);
    // The stream being linked: its last version and link.
    let mut last: Option<(String, u64, Option<Hash>)> = None;
    loop {
        let page = unlinked_after(&mut tx, &after).await?;
        let Some(end) = page.last() else { break };
        after = (end.stream_id.clone(), version(end.stream_version));
        let mut links = Vec::with_capacity(page.len());
        for e in &page {
            let previous = match &last {
                Some((stream, v, link)) if *stream == e.stream_id && v + 1 == e.stream_version => {
                    *link
                }
                _ if e.stream_version == 1 => Some(GENESIS),
                _ => link_of(&mut tx, &e.stream_id, e.stream_version - 1).await?,
            };
            let data = e.data.to_value();
            let link = previous.map(|p| chain::link(&p, &e.content(&data).hash()));
            links.push((e.stream_id.as_str(), version(e.stream_version), link));
            last = Some((e.stream_id.clone(), e.stream_version, link));
        }
        store(&mut tx, &links).await?;
        linked += page.len() as u64;
    }
    let mark = "INSERT INTO event_chains (linked_at) VALUES ($1)";
    crate::on_tx!(&mut tx, c => sqlx::query(mark).bind(chrono::Utc::now()).execute(c).await.map(|_| ())?);
    tx.commit().await?;
    tracing::info!(linked, "linked the events written before hash chains");
    Ok(linked)
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn unlinked_after(
    tx: &mut Tx<'_>,
    (stream, version): &(String, i64),
) -> Result<Vec<RecordedEvent>, StoreError> {
    let filter = "WHERE hash IS NULL AND (stream_id, stream_version) > ($1, $2) \
                  ORDER BY stream_id, stream_version LIMIT $3";
    match tx {
        Tx::Postgres(t) => {
            let sql = format!("SELECT {} FROM events {filter}", crate::postgres::COLUMNS);
            let rows = sqlx::query(&sql)
                .bind(stream)
                .bind(version)
                .bind(PAGE)
                .fetch_all(&mut **t)
                .await?;
            rows.iter().map(crate::postgres::decode).collect()
        }
        Tx::Sqlite(t) => {
            let sql = format!("SELECT {} FROM events {filter}", crate::sqlite::COLUMNS);
            let rows = sqlx::query(&sql)
                .bind(stream)
                .bind(version)
                .bind(PAGE)
                .fetch_all(&mut **t)
                .await?;
            rows.iter().map(crate::sqlite::decode).collect()
        }
    }
}

/// The stored link of one event (linked already, or earlier in this backfill).
async fn link_of(tx: &mut Tx<'_>, stream: &str, v: u64) -> Result<Option<Hash>, StoreError> {
    let sql = "SELECT hash, position FROM events WHERE stream_id = $1 AND stream_version = $2";
    let row: Option<(Option<Vec<u8>>, i64)> = crate::on_tx!(tx, c => sqlx::query_as(sql)
        .bind(stream)
        .bind(version(v))
        .fetch_optional(c)
        .await?);
    match row {
        Some((hash, position)) => chain::stored(hash, position),
        // A version missing from the stream: nothing to chain after.
        None => Ok(None),
    }
}

async fn store(tx: &mut Tx<'_>, links: &[(&str, i64, Option<Hash>)]) -> Result<(), StoreError> {
    match tx {
        Tx::Postgres(t) => {
            sqlx::query(
                "UPDATE events e SET hash = u.h
                 FROM UNNEST($1::text[], $2::int8[], $3::bytea[]) AS u(s, v, h)
                 WHERE e.stream_id = u.s AND e.stream_version = u.v",
            )
            .bind(links.iter().map(|l| l.0).collect::<Vec<_>>())
            .bind(links.iter().map(|l| l.1).collect::<Vec<_>>())
            .bind(
                links
                    .iter()
                    .map(|l| l.2.map(|h| h.to_vec()))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **t)
            .await?;
        }
        Tx::Sqlite(t) => {
            for (stream, v, link) in links {
                sqlx::query(
                    "UPDATE events SET hash = ? WHERE stream_id = ? AND stream_version = ?",
                )
                .bind(link.map(|h| h.to_vec()))
                .bind(stream)
                .bind(v)
                .execute(&mut **t)
                .await?;
            }
        }
    }
    Ok(())
}
