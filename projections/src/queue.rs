//! The `queue` read model: per platform, the runs that are not final, and
//! whether the platform is paused for maintenance.

use std::sync::Arc;

use async_trait::async_trait;
use sp_domain::platform::PlatformEvent;
use sp_eventstore::{EventStore, RecordedEvent};

use crate::run_states::RunStates;
use crate::run_view::{RunRow, RunStatus};
use crate::runner::{Projection, ProjectionError, decode};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug)]
pub struct QueueProjection {
    states: RunStates,
}

impl QueueProjection {
    pub const NAME: &'static str = "queue";

    pub fn new(store: Arc<dyn EventStore>) -> Self {
        QueueProjection {
            states: RunStates::new(store),
        }
    }

    async fn platform_change(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<String>, ProjectionError> {
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
        Ok(Some(c.platform.to_string()))
    }
}

const UPSERT: &str = "INSERT INTO queue_entries (
    run_id, seq, platform, priority, status, stage, attempt, queued_at, waiting_since,
    eligible_at, deadline_at, deadline_kind, vm_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (run_id) DO UPDATE SET
    status = excluded.status, stage = excluded.stage, attempt = excluded.attempt,
    waiting_since = CASE WHEN queue_entries.status = excluded.status
                         THEN queue_entries.waiting_since ELSE excluded.waiting_since END,
    eligible_at = excluded.eligible_at, deadline_at = excluded.deadline_at,
    deadline_kind = excluded.deadline_kind, vm_name = excluded.vm_name";

#[async_trait]
impl Projection for QueueProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["queue_entries", "platform_states"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<String>, ProjectionError> {
        if event.stream_id.starts_with("platform-") {
            return self.platform_change(tx, event).await;
        }
        let Some(folded) = self.states.after(event).await? else {
            return Ok(None);
        };
        let Some(row) = RunRow::from_state(&folded.state, folded.seq, event.position) else {
            return Ok(None);
        };
        let status = RunStatus::parse(&row.status).unwrap_or(RunStatus::Failed);
        match (
            status.is_final(),
            row.deadline_at,
            row.deadline_kind.as_deref(),
        ) {
            (false, Some(deadline_at), Some(deadline_kind)) => {
                on_tx!(tx, c => {
                    sqlx::query(UPSERT)
                        .bind(row.run_id.to_string())
                        .bind(row.seq)
                        .bind(&row.platform)
                        .bind(row.priority)
                        .bind(&row.status)
                        .bind(&row.stage)
                        .bind(row.attempt)
                        .bind(row.queued_at)
                        // Waiting (or running) since this event, unless the
                        // status is unchanged (kept by the upsert).
                        .bind(folded.event.at())
                        .bind(row.eligible_at)
                        .bind(deadline_at)
                        .bind(deadline_kind)
                        .bind(&row.vm_name)
                        .execute(c)
                        .await?
                        .rows_affected()
                });
            }
            _ => {
                on_tx!(tx, c => {
                    sqlx::query("DELETE FROM queue_entries WHERE run_id = $1")
                        .bind(row.run_id.to_string())
                        .execute(c)
                        .await?
                        .rows_affected()
                });
            }
        }
        Ok(Some(row.run_id.to_string()))
    }
}
