//! The `queue` read model: per platform, the runs that are not final, and
//! whether the platform is paused for maintenance.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sp_domain::RunId;
use sp_domain::platform::PlatformEvent;
use sp_eventstore::RecordedEvent;

use crate::batch::{Counts, delete_runs, rows_per_statement, stored_statuses};
use crate::run_states::Folded;
use crate::run_view::{RunRow, RunStatus};
use crate::runner::{Projection, ProjectionError, Step, decode};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, Default)]
pub struct QueueProjection;

impl QueueProjection {
    pub const NAME: &'static str = "queue";

    async fn platform_change(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<String, ProjectionError> {
        let change: PlatformEvent = decode(event)?;
        let (paused, c) = match &change {
            PlatformEvent::PlatformPaused(c) => (true, c),
            PlatformEvent::PlatformResumed(c) => (false, c),
        };
        let sql = "INSERT INTO platform_states (platform, paused, note, changed_at, changed_by)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (platform) DO UPDATE SET paused = excluded.paused, note = excluded.note,
                       changed_at = excluded.changed_at, changed_by = excluded.changed_by";
        on_tx!(tx, conn => {
            sqlx::query(sql)
                .bind(c.platform.as_str())
                .bind(paused)
                .bind(&c.note)
                .bind(c.at)
                .bind(&event.metadata.actor)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(c.platform.to_string())
    }
}

const INSERT: &str = "INSERT INTO queue_entries (
    run_id, seq, platform, priority, status, stage, attempt, queued_at, waiting_since,
    eligible_at, deadline_at, deadline_kind, vm_name) ";
const COLUMNS: usize = 13;

const ON_CONFLICT: &str = " ON CONFLICT (run_id) DO UPDATE SET
    status = excluded.status, stage = excluded.stage, attempt = excluded.attempt,
    waiting_since = CASE WHEN queue_entries.status = excluded.status
                         THEN queue_entries.waiting_since ELSE excluded.waiting_since END,
    eligible_at = excluded.eligible_at, deadline_at = excluded.deadline_at,
    deadline_kind = excluded.deadline_kind, vm_name = excluded.vm_name";

/// A run's place in the queue after one of its events: its row, if it is
/// waiting or running with a deadline.
fn entry(run: &Folded) -> Option<&RunRow> {
    let row = &run.row;
    let status = RunStatus::parse(&row.status).unwrap_or(RunStatus::Failed);
    (!status.is_final() && row.deadline_at.is_some() && row.deadline_kind.is_some()).then_some(row)
}

/// What a batch leaves of one run in the queue.
struct Outcome<'a> {
    row: Option<&'a RunRow>,
    /// When its status last changed within the batch; `None` when it did
    /// not change since the run's first event in the batch, whose time is
    /// `first_at`: then the stored row says whether it changed before.
    changed_at: Option<DateTime<Utc>>,
    first_at: DateTime<Utc>,
}

const COUNTS: Counts = Counts {
    table: "queue_counts",
    key: "status",
    count: "entries",
};

/// Move `queue_counts` by what the batch does to each run's place: out of
/// its stored (platform, status), into its new one.
async fn count_changes(
    tx: &mut Tx<'_>,
    runs: &[(RunId, Outcome<'_>)],
) -> Result<(), ProjectionError> {
    let ids: Vec<String> = runs.iter().map(|(id, _)| id.to_string()).collect();
    let stored = stored_statuses(
        tx,
        "SELECT platform, status, CAST(NULL AS TEXT) FROM queue_entries WHERE run_id IN (",
        &ids,
    )
    .await?;
    let mut moves: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (platform, status, _) in stored {
        *moves.entry((platform, status)).or_default() -= 1;
    }
    for (_, outcome) in runs {
        if let Some(row) = &outcome.row {
            *moves
                .entry((row.platform.clone(), row.status.clone()))
                .or_default() += 1;
        }
    }
    COUNTS.apply(tx, moves).await?;
    Ok(())
}

#[async_trait]
impl Projection for QueueProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["queue_entries", "platform_states", "queue_counts"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let mut changed = Vec::new();
        // Waiting (or running) since the event that gave the run its status,
        // as if each event were applied alone.
        let mut runs: Vec<(RunId, Outcome)> = Vec::new();
        let mut index: HashMap<RunId, usize> = HashMap::new();
        for step in steps {
            if step.event.stream_id.starts_with("platform-") {
                changed.push(self.platform_change(tx, step.event).await?);
                continue;
            }
            let Some(run) = &step.run else { continue };
            let id = run.row.run_id;
            let row = entry(run);
            let at = run.event.at();
            match index.get(&id) {
                None => {
                    index.insert(id, runs.len());
                    runs.push((
                        id,
                        Outcome {
                            row,
                            changed_at: None,
                            first_at: at,
                        },
                    ));
                }
                Some(&i) => {
                    let outcome = &mut runs[i].1;
                    if outcome.row.map(|r| &r.status) != row.map(|r| &r.status) {
                        outcome.changed_at = Some(at);
                    }
                    outcome.row = row;
                }
            }
        }
        count_changes(tx, &runs).await?;
        // Runs that left the queue, or whose status changed within the batch
        // (their stored row is no guide), go first; then one upsert.
        let gone: Vec<String> = runs
            .iter()
            .filter(|(_, o)| o.row.is_none() || o.changed_at.is_some())
            .map(|(id, _)| id.to_string())
            .collect();
        delete_runs(tx, "queue_entries", &gone).await?;
        let rows: Vec<(&RunRow, DateTime<Utc>)> = runs
            .iter()
            .filter_map(|(_, o)| Some((o.row?, o.changed_at.unwrap_or(o.first_at))))
            .collect();
        for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
            on_tx!(&mut *tx, c => {
                let mut q = sqlx::QueryBuilder::new(INSERT);
                q.push_values(chunk, |mut b, (row, since)| {
                    b.push_bind(row.run_id.to_string())
                        .push_bind(row.seq)
                        .push_bind(&row.platform)
                        .push_bind(row.priority)
                        .push_bind(&row.status)
                        .push_bind(&row.stage)
                        .push_bind(row.attempt)
                        .push_bind(row.queued_at)
                        .push_bind(*since)
                        .push_bind(row.eligible_at)
                        .push_bind(row.deadline_at)
                        .push_bind(&row.deadline_kind)
                        .push_bind(&row.vm_name);
                });
                q.push(ON_CONFLICT);
                q.build().execute(c).await?.rows_affected()
            });
        }
        changed.extend(runs.iter().map(|(id, _)| id.to_string()));
        Ok(changed)
    }
}
