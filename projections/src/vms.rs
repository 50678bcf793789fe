//! The `vms` read model: every VM the platform asked for, and where it is in
//! its life. The VM process manager's work list: requested VMs to create,
//! deletions to carry out, and for reconciliation what should exist.

use async_trait::async_trait;
use sp_domain::RunEvent;

use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, Default)]
pub struct VmsProjection;

impl VmsProjection {
    pub const NAME: &'static str = "vms";
}

#[async_trait]
impl Projection for VmsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["vms"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        // A handful of VM events per run: one statement each, in order, as
        // each moves a VM only forward from the status it finds.
        let mut changed = Vec::new();
        for step in steps {
            if let Some(name) = apply_one(tx, step).await? {
                changed.push(name);
            }
        }
        Ok(changed)
    }
}

async fn apply_one(tx: &mut Tx<'_>, step: &Step<'_>) -> Result<Option<String>, ProjectionError> {
    let event = step.event;
    let Some(folded) = &step.run else {
        return Ok(None);
    };
    let run_id = folded.row.run_id.to_string();
    // Status only moves forward, as in the domain's own fold.
    let changed = match &folded.event {
        RunEvent::VmRequested(e) => {
            let sql =
                "INSERT INTO vms (vm_name, run_id, platform, attempt, status, idempotency_key,
                                            requested_at, last_position)
                           VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7)
                           ON CONFLICT (vm_name) DO NOTHING";
            on_tx!(tx, c => sqlx::query(sql)
                    .bind(&e.vm_name)
                    .bind(&run_id)
                    .bind(&folded.row.platform)
                    .bind(i32::try_from(e.attempt).unwrap_or(i32::MAX))
                    .bind(&e.idempotency_key)
                    .bind(e.at)
                    .bind(event.position)
                    .execute(c)
                    .await?
                    .rows_affected());
            Some(e.vm_name.clone())
        }
        RunEvent::VmCreated(e) => {
            let sql = "UPDATE vms SET status = 'created', created_at = $2, last_position = $3
                           WHERE vm_name = $1 AND status = 'requested'";
            on_tx!(tx, c => sqlx::query(sql)
                    .bind(&e.vm_name)
                    .bind(e.at)
                    .bind(event.position)
                    .execute(c)
                    .await?
                    .rows_affected());
            Some(e.vm_name.clone())
        }
        RunEvent::VmDeleteRequested(e) => {
            let sql = "UPDATE vms SET status = 'delete_requested', delete_requested_at = $2,
                                          delete_reason = $3, last_position = $4
                           WHERE vm_name = $1 AND status IN ('requested', 'created')";
            on_tx!(tx, c => sqlx::query(sql)
                    .bind(&e.vm_name)
                    .bind(e.at)
                    .bind(&e.reason)
                    .bind(event.position)
                    .execute(c)
                    .await?
                    .rows_affected());
            Some(e.vm_name.clone())
        }
        RunEvent::VmAbandoned(e) => {
            let sql = "UPDATE vms SET status = 'abandoned', abandoned_at = $2,
                                          abandoned_reason = $3, last_position = $4
                           WHERE vm_name = $1 AND status = 'delete_requested'";
            on_tx!(tx, c => sqlx::query(sql)
                    .bind(&e.vm_name)
                    .bind(e.at)
                    .bind(&e.reason)
                    .bind(event.position)
                    .execute(c)
                    .await?
                    .rows_affected());
            Some(e.vm_name.clone())
        }
        RunEvent::VmDeleted(e) => {
            let sql = "UPDATE vms SET status = 'deleted', deleted_at = $2, last_position = $3
                           WHERE vm_name = $1 AND status <> 'deleted'";
            on_tx!(tx, c => sqlx::query(sql)
                    .bind(&e.vm_name)
                    .bind(e.at)
                    .bind(event.position)
                    .execute(c)
                    .await?
                    .rows_affected());
            Some(e.vm_name.clone())
        }
        _ => None,
    };
    Ok(changed)
}
