//! The `audit` read model: every event of every run, with who, why and when.
//! The events' data stays in the log (the trail reads it from there by the
//! stream's key), so the model does not write the log a second time.

use async_trait::async_trait;
use sp_domain::RunId;
use sp_eventstore::RecordedEvent;

use crate::batch::rows_per_statement;
use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;

#[derive(Debug, Default)]
pub struct AuditProjection;

impl AuditProjection {
    pub const NAME: &'static str = "audit";
}

const INSERT: &str = "INSERT INTO audit_events (position, run_id, stream_version, event_type,
    schema_version, actor, correlation_id, causation_id, recorded_at)";
/// PostgreSQL's rows: one array per column.
const UNNEST: &str = " SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[],
    $5::int4[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])";
const ON_CONFLICT: &str = " ON CONFLICT (position) DO NOTHING";
const COLUMNS: usize = 9;

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
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let rows: Vec<(RunId, &RecordedEvent)> = steps
            .iter()
            .filter_map(|s| Some((RunId::from_stream(&s.event.stream_id)?, s.event)))
            .collect();
        match tx {
            Tx::Postgres(_) if rows.is_empty() => {}
            // One statement of arrays, planned once (see `results`).
            Tx::Postgres(t) => {
                sqlx::query(&format!("{INSERT}{UNNEST}{ON_CONFLICT}"))
                    .bind(rows.iter().map(|(_, e)| e.position).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|(run, _)| run.to_string())
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|(_, e)| version(e)).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|(_, e)| e.event_type.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|(_, e)| schema(e)).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|(_, e)| e.metadata.actor.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        rows.iter()
                            .map(|(_, e)| e.metadata.correlation_id.to_string())
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        rows.iter()
                            .map(|(_, e)| e.metadata.causation_id.map(|c| c.to_string()))
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|(_, e)| e.recorded_at).collect::<Vec<_>>())
                    .execute(&mut **t)
                    .await?;
            }
            Tx::Sqlite(t) => {
                for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
                    let mut q = sqlx::QueryBuilder::new(INSERT);
                    q.push(" ");
                    q.push_values(chunk, |mut b, (run, event)| {
                        b.push_bind(event.position)
                            .push_bind(run.to_string())
                            .push_bind(version(event))
                            .push_bind(&event.event_type)
                            .push_bind(schema(event))
                            .push_bind(&event.metadata.actor)
                            .push_bind(event.metadata.correlation_id.to_string())
                            .push_bind(event.metadata.causation_id.map(|c| c.to_string()))
                            .push_bind(event.recorded_at);
                    });
                    q.push(ON_CONFLICT);
                    q.build().execute(&mut **t).await?;
                }
            }
        }
        let mut changed: Vec<String> = rows.iter().map(|(run, _)| run.to_string()).collect();
        changed.dedup();
        Ok(changed)
    }
}

fn version(event: &RecordedEvent) -> i64 {
    i64::try_from(event.stream_version).unwrap_or(i64::MAX)
}

fn schema(event: &RecordedEvent) -> i32 {
    i32::try_from(event.schema_version).unwrap_or(i32::MAX)
}
