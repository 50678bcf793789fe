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

use crate::run_states::{Folded, RunStates};
use sp_domain::RunId;

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
    E::decode(&event.event_type, event.schema_version, event.data.as_str()).map_err(|e| {
        ProjectionError::Decode {
            position: event.position,
            message: e.to_string(),
        }
    })
}

/// One event as every read model sees it: for a run's events, the run's
/// state just after it, folded once for all models.
#[derive(Debug)]
pub struct Step<'a> {
    pub event: &'a RecordedEvent,
    pub run: Option<Folded>,
}

/// A read model fed by the log.
#[async_trait]
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// The name used for its checkpoint and by `projections rebuild NAME`.
    fn name(&self) -> &'static str;

    /// The tables it owns: emptied before a rebuild.
    fn tables(&self) -> &'static [&'static str];

    /// Apply a batch of events, in log order, inside the batch's
    /// transaction. A model writes what the batch leaves (a run's last row,
    /// not one per event), in as few statements as it can, and the result is
    /// the same however the log is cut into batches. Returns the keys of what
    /// changed (run ids), for live subscribers.
    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError>;
}

/// How a projection is doing, for `/readyz` and the logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionStatus {
    pub checkpoint: LogPosition,
    /// This replica follows another one's projector instead of applying.
    pub following: bool,
    /// The event it cannot apply, and why; retried until it can.
    pub failing: Option<(i64, String)>,
}

/// A change to a read model, published after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub projection: &'static str,
    pub key: String,
}

/// Runs the read models until shut down: one reader of the log, one fold of
/// each run, one transaction per batch for all models, each with its own
/// checkpoint (a rebuild of one model moves only its own).
#[derive(Debug)]
pub struct Projector {
    models: Vec<Model>,
    db: Database,
    states: RunStates,
    changes: broadcast::Sender<Change>,
    batch_size: usize,
}

#[derive(Debug)]
struct Model {
    projection: Arc<dyn Projection>,
    status: watch::Sender<ProjectionStatus>,
}

/// How long a woken projector waits for more commits before reading: under
/// load, a batch per few milliseconds instead of a transaction per delivery.
const LINGER: Duration = Duration::from_millis(2);

/// How often a following replica looks at the checkpoints while the
/// applying one has not reached what it read.
const FOLLOW_POLL: Duration = Duration::from_millis(10);

/// Events read per batch by a rebuild, which has the whole log to read.
const REBUILD_BATCH: usize = 5_000;

enum BatchError {
    /// Someone else (a rebuild, another replica) moved a checkpoint.
    CheckpointMoved,
    /// The model at this index (`None`: the batch's transaction, so all of
    /// them) cannot apply the event at this position.
    Failed(Option<usize>, i64, ProjectionError),
}

impl Projector {
    /// Models are applied in the order given; their names must differ.
    pub fn new(
        projections: Vec<Arc<dyn Projection>>,
        db: Database,
        changes: broadcast::Sender<Change>,
    ) -> Self {
        let mut models: Vec<Model> = projections
            .into_iter()
            .map(|projection| Model {
                projection,
                status: watch::channel(ProjectionStatus::default()).0,
            })
            .collect();
        // Checkpoints are locked in name order by every writer, so a batch
        // and a rebuild queue up instead of deadlocking.
        models.sort_by_key(|m| m.projection.name());
        Projector {
            states: RunStates::new(db.store.clone()),
            models,
            db,
            changes,
            batch_size: 500,
        }
    }

    /// Each model's name and status.
    pub fn statuses(&self) -> Vec<(&'static str, watch::Receiver<ProjectionStatus>)> {
        self.models
            .iter()
            .map(|m| (m.projection.name(), m.status.subscribe()))
            .collect()
    }

    /// Show each model at its checkpoint, applying or following, failing
    /// at nothing.
    fn show(&self, checkpoints: &[LogPosition], following: bool) {
        for (m, c) in self.models.iter().zip(checkpoints) {
            m.status.send_replace(ProjectionStatus {
                checkpoint: *c,
                following,
                failing: None,
            });
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.models.iter().map(|m| m.projection.name()).collect()
    }

    /// The log after `from`, in batches, lingering briefly after a wake-up
    /// so one read takes what several commits wrote.
    fn follower(&self, from: LogPosition) -> LogFollower {
        LogFollower::new(self.db.store.clone(), from)
            .batch_size(self.batch_size)
            .linger(LINGER)
    }

    /// Told to one model (`Some(index)`) or all of them.
    fn report_failure(&self, model: Option<usize>, position: i64, error: &dyn std::fmt::Display) {
        for (i, m) in self.models.iter().enumerate() {
            if model.is_none_or(|f| f == i) {
                tracing::error!(projection = m.projection.name(), position, %error, "projection cannot apply an event; retrying");
                m.status
                    .send_modify(|s| s.failing = Some((position, error.to_string())));
            }
        }
    }

    async fn load(&self, shutdown: &CancellationToken) -> Option<Vec<LogPosition>> {
        let names = self.names();
        let load = (|| load_checkpoints(&self.db, &names))
            .retry(pauses())
            .sleep(tokio::time::sleep)
            .notify(|e, _| self.report_failure(None, 0, e));
        tokio::select! {
            () = shutdown.cancelled() => None,
            // The schedule has no end: only shutdown stops it.
            loaded = load => loaded.ok(),
        }
    }

    /// Apply the log to the models until shut down.
    pub async fn run(&self, shutdown: CancellationToken) {
        let Some(mut checkpoints) = self.load(&shutdown).await else {
            return;
        };
        self.show(&checkpoints, false);
        let from = checkpoints.iter().min().copied().unwrap_or_default();
        let mut follower = self.follower(from);
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
                    self.report_failure(None, follower.cursor().position, &e);
                    let pause = read_pauses.next().unwrap_or_default();
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    // A failed read leaves the follower where it was.
                    continue;
                }
            };
            // Folded once; a fold that fails (an event it cannot decode) is
            // tried again, as a batch that fails is applied again (the same
            // events, in order) until it lands.
            let fold = (|| self.states.fold(&batch))
                .retry(pauses())
                .sleep(tokio::time::sleep)
                .notify(|e, _| self.report_failure(None, failed_position(e), e));
            let steps = tokio::select! {
                () = shutdown.cancelled() => return,
                steps = fold => match steps {
                    Ok(steps) => steps,
                    Err(_) => return,
                },
            };
            let apply = (|| apply_batch(&self.models, &self.db, &checkpoints, &steps))
                .retry(pauses())
                .sleep(tokio::time::sleep)
                .when(|e| matches!(e, BatchError::Failed(..)))
                .notify(|e, _| {
                    if let BatchError::Failed(model, position, e) = e {
                        self.report_failure(*model, *position, e);
                    }
                });
            let applied = tokio::select! {
                () = shutdown.cancelled() => return,
                applied = apply => applied,
            };
            match applied {
                Ok(changed) => {
                    let last = batch.last().map(RecordedEvent::cursor);
                    for checkpoint in &mut checkpoints {
                        *checkpoint = last.map_or(*checkpoint, |l| l.max(*checkpoint));
                    }
                    self.show(&checkpoints, false);
                    for (m, keys) in self.models.iter().zip(changed) {
                        for key in keys {
                            let _ = self.changes.send(Change {
                                projection: m.projection.name(),
                                key,
                            });
                        }
                    }
                }
                Err(BatchError::CheckpointMoved) => {
                    tracing::warn!(
                        "a read model's checkpoint was moved by someone else; reloading"
                    );
                    let Some(loaded) = self.load(&shutdown).await else {
                        return;
                    };
                    checkpoints = loaded;
                    let from = checkpoints.iter().min().copied().unwrap_or_default();
                    follower = self.follower(from);
                }
                // The schedule has no end: only shutdown stops it.
                Err(BatchError::Failed(..)) => return,
            }
        }
    }

    /// While another replica applies the log (it holds the lease), follow
    /// it: read what it applies and, once its checkpoints have passed it,
    /// publish the changes here, so this replica's subscribers and managers
    /// see every change as promptly as if it applied them itself. Until shut
    /// down (cancel it when this replica takes the lease).
    pub async fn follow(&self, shutdown: CancellationToken) {
        let Some(checkpoints) = self.load(&shutdown).await else {
            return;
        };
        self.show(&checkpoints, true);
        let names = self.names();
        let from = checkpoints.iter().min().copied().unwrap_or_default();
        let mut follower = self.follower(from);
        loop {
            let batch = tokio::select! {
                () = shutdown.cancelled() => return,
                batch = follower.next_batch() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    // Said on /readyz until a read works again; the follower
                    // stays where it was.
                    self.report_failure(None, follower.cursor().position, &e);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(FOLLOW_POLL * 10) => {}
                    }
                    continue;
                }
            };
            let Some(last) = batch.last().map(RecordedEvent::cursor) else {
                continue;
            };
            loop {
                let pause = match load_checkpoints(&self.db, &names).await {
                    Ok(checkpoints) => {
                        self.show(&checkpoints, true);
                        if checkpoints.iter().all(|c| *c >= last) {
                            break;
                        }
                        FOLLOW_POLL
                    }
                    Err(e) => {
                        self.report_failure(None, last.position, &e);
                        FOLLOW_POLL * 10
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
            let mut keys: Vec<String> = batch
                .iter()
                .map(|e| match RunId::from_stream(&e.stream_id) {
                    Some(run) => run.to_string(),
                    None => e.stream_id.clone(),
                })
                .collect();
            keys.dedup();
            for m in &self.models {
                for key in &keys {
                    let _ = self.changes.send(Change {
                        projection: m.projection.name(),
                        key: key.clone(),
                    });
                }
            }
        }
    }
}

fn failed_position(e: &ProjectionError) -> i64 {
    match e {
        ProjectionError::Decode { position, .. } => *position,
        _ => 0,
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

/// The steps a model at `checkpoint` has not applied: a suffix, as a batch
/// is in log order.
fn after<'s, 'e>(steps: &'s [Step<'e>], checkpoint: LogPosition) -> &'s [Step<'e>] {
    let first = steps.partition_point(|s| s.event.cursor() <= checkpoint);
    &steps[first..]
}

/// Apply a batch to every model, and move the checkpoints, in one
/// transaction. Returns each model's changed keys, in the models' order.
async fn apply_batch(
    models: &[Model],
    db: &Database,
    expected: &[LogPosition],
    steps: &[Step<'_>],
) -> Result<Vec<Vec<String>>, BatchError> {
    let first = steps.first().map_or(0, |s| s.event.position);
    let failed_at = |position| move |e: sqlx::Error| BatchError::Failed(None, position, e.into());
    let mut tx = Tx::begin(&db.pool).await.map_err(failed_at(first))?;
    for (m, expected) in models.iter().zip(expected) {
        let current = lock_checkpoint(&mut tx, m.projection.name())
            .await
            .map_err(failed_at(first))?;
        if current.unwrap_or(LogPosition::START) != *expected {
            return Err(BatchError::CheckpointMoved);
        }
    }
    let mut changed = Vec::with_capacity(models.len());
    for (i, (m, expected)) in models.iter().zip(expected).enumerate() {
        let todo = after(steps, *expected);
        let (Some(first), Some(last)) = (todo.first(), todo.last()) else {
            changed.push(Vec::new());
            continue;
        };
        let keys = m
            .projection
            .apply(&mut tx, todo)
            .await
            .map_err(|e| BatchError::Failed(Some(i), first.event.position, e))?;
        write_checkpoint(&mut tx, m.projection.name(), last.event.cursor())
            .await
            .map_err(|e| BatchError::Failed(Some(i), last.event.position, e.into()))?;
        changed.push(keys);
    }
    let last = steps.last().map_or(0, |s| s.event.position);
    tx.commit().await.map_err(failed_at(last))?;
    Ok(changed)
}

/// Each named model's checkpoint, in the order given.
async fn load_checkpoints(
    db: &Database,
    names: &[&'static str],
) -> Result<Vec<LogPosition>, sqlx::Error> {
    let mut checkpoints = Vec::with_capacity(names.len());
    for name in names {
        checkpoints.push(load_checkpoint(db, name).await?);
    }
    Ok(checkpoints)
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

/// The whole log in batches, the next one read while the last is applied
/// (the read waits on the database, the apply mostly on this process). Ends
/// after the last batch, an error, or at events that wait for a transaction
/// still running; stops when the receiver is dropped.
fn read_ahead(
    store: Arc<dyn sp_eventstore::EventStore>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>> {
    let (send, receive) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut cursor = LogPosition::START;
        loop {
            let batch = match store.read_all(cursor, REBUILD_BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = send.send(Err(e)).await;
                    return;
                }
            };
            // Held back: on PostgreSQL the rebuild's own transaction is
            // older than anything appended since it began, so waiting would
            // wait for ever; what follows is the live projector's, from the
            // checkpoint the rebuild writes.
            let Some(last) = batch.events.last() else {
                return;
            };
            cursor = last.cursor();
            if send.send(Ok(batch.events)).await.is_err() {
                return;
            }
        }
    });
    receive
}

/// Empty the models' tables and apply the whole log again, read once for
/// all of them, in one transaction: readers see the old models until the new
/// ones are complete. Events appended while it runs are left to the live
/// projector, which goes on from the checkpoint it writes. `progress` is
/// told (events applied, log head) after each batch.
pub async fn rebuild(
    projections: &[Arc<dyn Projection>],
    db: &Database,
    mut progress: impl FnMut(u64, i64),
) -> Result<u64, ProjectionError> {
    let head = db.store.head_position().await?;
    let mut projections = projections.to_vec();
    projections.sort_by_key(|p| p.name());
    let mut tx = Tx::begin(&db.pool).await?;
    for projection in &projections {
        lock_checkpoint(&mut tx, projection.name()).await?;
        for table in projection.tables() {
            let sql = format!("DELETE FROM {table}");
            on_tx!(&mut tx, c => sqlx::query(&sql).execute(c).await?.rows_affected());
        }
    }
    let states = RunStates::new(db.store.clone());
    let mut cursor = LogPosition::START;
    let mut applied = 0u64;
    let mut batches = read_ahead(db.store.clone());
    while let Some(events) = batches.recv().await {
        let events = events?;
        let steps = states.fold(&events).await?;
        for projection in &projections {
            projection.apply(&mut tx, &steps).await?;
        }
        applied += events.len() as u64;
        cursor = events.last().map_or(cursor, RecordedEvent::cursor);
        progress(applied, head);
    }
    for projection in &projections {
        write_checkpoint(&mut tx, projection.name(), cursor).await?;
    }
    tx.commit().await?;
    Ok(applied)
}
