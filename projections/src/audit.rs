//! The `audit` read model: every event of every run, with who, why and when.

use async_trait::async_trait;
use sp_domain::RunId;
use sp_eventstore::RecordedEvent;

use crate::runner::{Projection, ProjectionError};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, Default)]
pub struct AuditProjection;

impl AuditProjection {
    pub const NAME: &'static str = "audit";
}

#[async_trait]
impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_events"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        event: &RecordedEvent,
    ) -> Result<Option<String>, ProjectionError> {
        let Some(run) = RunId::from_stream(&event.stream_id) else {
            return Ok(None);
        };
        let sql = "INSERT INTO audit_events (position, run_id, stream_version, event_type, schema_version,
                       data, actor, correlation_id, causation_id, recorded_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (position) DO NOTHING";
        let version = i64::try_from(event.stream_version).unwrap_or(i64::MAX);
        let schema_version = i32::try_from(event.schema_version).unwrap_or(i32::MAX);
        on_tx!(tx, c => {
            sqlx::query(sql)
                .bind(event.position)
                .bind(run.to_string())
                .bind(version)
                .bind(&event.event_type)
                .bind(schema_version)
                .bind(event.data.to_string())
                .bind(&event.metadata.actor)
                .bind(event.metadata.correlation_id.to_string())
                .bind(event.metadata.causation_id.map(|c| c.to_string()))
                .bind(event.recorded_at)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(Some(run.to_string()))
    }
}
