//! Running a projection: follow the log from the checkpoint, apply each batch
//! and move the checkpoint in one transaction, and never skip an event that
//! fails: report it (log and status, with its position) and retry it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use chrono::Utc;
use sp_eventstore::{Database, LogFollower, LogPosition, RecordedEvent, StoreError};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot decode event at position {position}: {message}")]
    Decode { position: i64, message: String },
}

/// The one way a read model decodes a stored event (upcasting old shapes).
pub(crate) fn decode<E: sp_domain::codec::EventSchema>(
    event: &RecordedEvent,
) -> Result<E, ProjectionError> {
    E::decode(&event.event_type, event.schema_version, event.data.clone()).map_err(|e| {
        ProjectionError::Decode {
            position: event.position,
            message: e.to_string(),
        }
    })
}

/// A read model fed by the log.
#[async_trait]
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// The name used for its checkpoint and by `projections rebuild NAME`.
    fn name(&self) -> &'static str;

    /// The tables it owns: emptied before a rebuild.
    fn tables(&self) -> &'static [&'static str];

    /// Apply one event inside the batch's transaction. Returns the key of what
    /// changed (a run id), for live subscribers.
    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<String>, ProjectionError>;
}

/// How a projection is doing, for `/readyz` and the logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionStatus {
    pub checkpoint: LogPosition,
    /// The event it cannot apply, and why; retried until it can.
    pub failing: Option<(i64, String)>,
}

/// A change to a read model, published after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub projection: &'static str,
    pub key: String,
}

/// Runs one projection until shut down.
#[derive(Debug)]
pub struct Projector {
    projection: Arc<dyn Projection>,
    db: Database,
    status: watch::Sender<ProjectionStatus>,
    changes: broadcast::Sender<Change>,
    batch_size: usize,
}

/// How long a woken projector waits for more commits before reading: under
/// load, a batch per few milliseconds instead of a transaction per delivery.
const LINGER: Duration = Duration::from_millis(2);

enum BatchError {
    /// Someone else (a rebuild, another replica) moved the checkpoint.
    CheckpointMoved,
    Failed(i64, ProjectionError),
}

impl Projector {
    pub fn new(
        projection: Arc<dyn Projection>,
        db: Database,
        changes: broadcast::Sender<Change>,
    ) -> Self {
        let (status, _) = watch::channel(ProjectionStatus::default());
        Projector {
            projection,
            db,
            status,
            changes,
            batch_size: 500,
        }
    }

    pub fn name(&self) -> &'static str {
        self.projection.name()
    }

    pub fn status(&self) -> watch::Receiver<ProjectionStatus> {
        self.status.subscribe()
    }

    /// The log after `from`, in batches, lingering briefly after a wake-up
    /// so one read takes what several commits wrote.
    fn follower(&self, from: LogPosition) -> LogFollower {
        LogFollower::new(self.db.store.clone(), from)
            .batch_size(self.batch_size)
            .linger(LINGER)
    }

    fn report_failure(&self, position: i64, error: &dyn std::fmt::Display) {
        tracing::error!(projection = self.name(), position, %error, "projection cannot apply an event; retrying");
        self.status
            .send_modify(|s| s.failing = Some((position, error.to_string())));
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let load = (|| load_checkpoint(&self.db, self.name()))
            .retry(pauses())
            .sleep(tokio::time::sleep)
            .notify(|e, _| self.report_failure(0, e));
        let mut checkpoint = tokio::select! {
            () = shutdown.cancelled() => return,
            loaded = load => match loaded {
                Ok(c) => c,
                // The schedule has no end: only shutdown stops it.
                Err(_) => return,
            },
        };
        self.status.send_modify(|s| s.checkpoint = checkpoint);
        let mut follower = self.follower(checkpoint);
        let mut read_pauses = pauses().build();
        loop {
            let batch = tokio::select! {
                () = shutdown.cancelled() => return,
                batch = follower.next_batch() => batch,
            };
            let batch = match batch {
                Ok(b) => {
                    read_pauses = pauses().build();
                    b
                }
                Err(e) => {
                    self.report_failure(checkpoint.position, &e);
                    let pause = read_pauses.next().unwrap_or_default();
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    // A failed read leaves the follower where it was.
                    continue;
                }
            };
            // A batch that fails is applied again (the same events, in order)
            // until it lands; one that finds its checkpoint moved is not.
            let apply = (|| apply_batch(&*self.projection, &self.db, checkpoint, &batch))
                .retry(pauses())
                .sleep(tokio::time::sleep)
                .when(|e| matches!(e, BatchError::Failed(..)))
                .notify(|e, _| {
                    if let BatchError::Failed(position, e) = e {
                        self.report_failure(*position, e);
                    }
                });
            let applied = tokio::select! {
                () = shutdown.cancelled() => return,
                applied = apply => applied,
            };
            match applied {
                Ok(changed) => {
                    checkpoint = batch.last().map_or(checkpoint, RecordedEvent::cursor);
                    self.status.send_replace(ProjectionStatus {
                        checkpoint,
                        failing: None,
                    });
                    for key in changed {
                        let _ = self.changes.send(Change {
                            projection: self.name(),
                            key,
                        });
                    }
                }
                Err(BatchError::CheckpointMoved) => {
                    tracing::warn!(
                        projection = self.name(),
                        "checkpoint moved by someone else; reloading"
                    );
                    checkpoint = match load_checkpoint(&self.db, self.name()).await {
                        Ok(c) => c,
                        Err(e) => {
                            self.report_failure(checkpoint.position, &e);
                            checkpoint
                        }
                    };
                    follower = self.follower(checkpoint);
                }
                // The schedule has no end: only shutdown stops it.
                Err(BatchError::Failed(..)) => return,
            }
        }
    }
}

/// Pauses between tries of what a projector cannot do yet (a database that
/// is down, an event it cannot apply): from 100 ms, doubling, up to 30 s,
/// for as long as it runs.
fn pauses() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
}

async fn apply_batch(
    projection: &dyn Projection,
    db: &Database,
    expected: LogPosition,
    batch: &[RecordedEvent],
) -> Result<Vec<String>, BatchError> {
    let first = batch.first().map_or(expected.position, |e| e.position);
    let failed_at = |position| move |e: sqlx::Error| BatchError::Failed(position, e.into());
    let mut tx = Tx::begin(&db.pool).await.map_err(failed_at(first))?;
    // The checkpoint row is locked first, by every writer of this model, so a
    // rebuild and a live batch queue up instead of deadlocking on rows.
    let current = lock_checkpoint(&mut tx, projection.name())
        .await
        .map_err(failed_at(first))?;
    if current.unwrap_or(LogPosition::START) != expected {
        return Err(BatchError::CheckpointMoved);
    }
    let mut changed = Vec::new();
    for event in batch {
        match projection.apply(&mut tx, event).await {
            Ok(Some(key)) => changed.push(key),
            Ok(None) => {}
            Err(e) => return Err(BatchError::Failed(event.position, e)),
        }
    }
    let Some(last) = batch.last() else {
        return Ok(changed);
    };
    write_checkpoint(&mut tx, projection.name(), last.cursor())
        .await
        .map_err(failed_at(last.position))?;
    tx.commit().await.map_err(failed_at(last.position))?;
    changed.dedup();
    Ok(changed)
}

pub(crate) async fn load_checkpoint(db: &Database, name: &str) -> Result<LogPosition, sqlx::Error> {
    let sql = "SELECT commit_id, position FROM projection_checkpoints WHERE name = $1";
    let row: Option<(i64, i64)> = sp_eventstore::on_pool!(&db.pool, p => {
        sqlx::query_as(sql).bind(name).fetch_optional(p).await?
    });
    Ok(
        row.map_or(LogPosition::START, |(commit, position)| LogPosition {
            commit,
            position,
        }),
    )
}

/// The checkpoint, locked until the transaction ends (PostgreSQL; SQLite's
/// write transaction already excludes every other writer).
pub(crate) async fn lock_checkpoint(
    tx: &mut Tx<'_>,
    name: &str,
) -> Result<Option<LogPosition>, sqlx::Error> {
    let select = "SELECT commit_id, position FROM projection_checkpoints WHERE name = $1";
    let row: Option<(i64, i64)> = match tx {
        Tx::Postgres(t) => {
            sqlx::query_as(&format!("{select} FOR UPDATE"))
                .bind(name)
                .fetch_optional(&mut **t)
                .await?
        }
        Tx::Sqlite(t) => {
            sqlx::query_as(select)
                .bind(name)
                .fetch_optional(&mut **t)
                .await?
        }
    };
    Ok(row.map(|(commit, position)| LogPosition { commit, position }))
}

pub(crate) async fn write_checkpoint(
    tx: &mut Tx<'_>,
    name: &str,
    to: LogPosition,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO projection_checkpoints (name, commit_id, position, updated_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (name) DO UPDATE
               SET commit_id = excluded.commit_id, position = excluded.position, updated_at = excluded.updated_at";
    on_tx!(tx, c => {
        sqlx::query(sql)
            .bind(name)
            .bind(to.commit)
            .bind(to.position)
            .bind(Utc::now())
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Empty the projection's tables and apply the whole log again, in one
/// transaction: readers see the old model until the new one is complete.
/// `progress` is told (events applied, log head) after each batch.
pub async fn rebuild(
    projection: &dyn Projection,
    db: &Database,
    mut progress: impl FnMut(u64, i64),
) -> Result<u64, ProjectionError> {
    let head = db.store.head_position().await?;
    let mut tx = Tx::begin(&db.pool).await?;
    lock_checkpoint(&mut tx, projection.name()).await?;
    for table in projection.tables() {
        let sql = format!("DELETE FROM {table}");
        on_tx!(&mut tx, c => sqlx::query(&sql).execute(c).await?.rows_affected());
    }

    let mut cursor = LogPosition::START;
    let mut applied = 0u64;
    loop {
        let batch = db.store.read_all(cursor, 1000).await?;
        let Some(last) = batch.events.last() else {
            if batch.held_back {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            break;
        };
        let last = last.cursor();
        for event in &batch.events {
            projection.apply(&mut tx, event).await?;
        }
        applied += batch.events.len() as u64;
        cursor = last;
        progress(applied, head);
    }
    write_checkpoint(&mut tx, projection.name(), cursor).await?;
    tx.commit().await?;
    Ok(applied)
}
