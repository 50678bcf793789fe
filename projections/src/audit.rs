//! The `audit` read model: every event of every stream, with who, why and
//! when, and a line a person can read (`sp_domain::summary`). The events'
//! data stays in the log (entries read it from there by the stream's key),
//! so the model does not write the log a second time.

use async_trait::async_trait;
use sp_domain::RunId;
use sp_domain::summary::{Summary, of_run, summarize};
use sp_eventstore::RecordedEvent;

use crate::batch::rows_per_statement;
use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;

#[derive(Debug, Default)]
pub struct AuditProjection;

impl AuditProjection {
    pub const NAME: &'static str = "audit";
}

const INSERT: &str = "INSERT INTO audit_log (position, stream_id, stream_version, event_type,
    schema_version, actor, correlation_id, causation_id, recorded_at, subject, summary)";
/// PostgreSQL's rows: one array per column.
const UNNEST: &str = " SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[],
    $5::int4[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::text[])";
const ON_CONFLICT: &str = " ON CONFLICT (position) DO NOTHING";
const COLUMNS: usize = 11;

#[async_trait]
impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_log"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let rows: Vec<(&RecordedEvent, Summary)> = steps
            .iter()
            .map(|s| {
                let e = s.event;
                // A run's event is decoded once for every model already.
                let summary = match &s.run {
                    Some(folded) => of_run(&folded.event),
                    None => summarize(
                        &e.stream_id,
                        &e.event_type,
                        e.schema_version,
                        e.data.as_str(),
                    ),
                };
                (e, summary)
            })
            .collect();
        match tx {
            Tx::Postgres(_) if rows.is_empty() => {}
            // One statement of arrays, planned once (see `results`).
            Tx::Postgres(t) => {
                let column = |f: &dyn Fn(&RecordedEvent, &Summary) -> Option<String>| {
                    rows.iter().map(|(e, s)| f(e, s)).collect::<Vec<_>>()
                };
                sqlx::query(&format!("{INSERT}{UNNEST}{ON_CONFLICT}"))
                    .bind(rows.iter().map(|(e, _)| e.position).collect::<Vec<_>>())
                    .bind(column(&|e, _| Some(e.stream_id.clone())))
                    .bind(rows.iter().map(|(e, _)| version(e)).collect::<Vec<_>>())
                    .bind(column(&|e, _| Some(e.event_type.clone())))
                    .bind(rows.iter().map(|(e, _)| schema(e)).collect::<Vec<_>>())
                    .bind(column(&|e, _| Some(e.metadata.actor.clone())))
                    .bind(column(&|e, _| Some(e.metadata.correlation_id.to_string())))
                    .bind(column(&|e, _| {
                        e.metadata.causation_id.map(|c| c.to_string())
                    }))
                    .bind(rows.iter().map(|(e, _)| e.recorded_at).collect::<Vec<_>>())
                    .bind(column(&|_, s| s.subject.clone()))
                    .bind(column(&|_, s| Some(s.line.clone())))
                    .execute(&mut **t)
                    .await?;
            }
            Tx::Sqlite(t) => {
                for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
                    let mut q = sqlx::QueryBuilder::new(INSERT);
                    q.push(" ");
                    q.push_values(chunk, |mut b, (event, summary)| {
                        b.push_bind(event.position)
                            .push_bind(&event.stream_id)
                            .push_bind(version(event))
                            .push_bind(&event.event_type)
                            .push_bind(schema(event))
                            .push_bind(&event.metadata.actor)
                            .push_bind(event.metadata.correlation_id.to_string())
                            .push_bind(event.metadata.causation_id.map(|c| c.to_string()))
                            .push_bind(event.recorded_at)
                            .push_bind(&summary.subject)
                            .push_bind(&summary.line);
                    });
                    q.push(ON_CONFLICT);
                    q.build().execute(&mut **t).await?;
                }
            }
        }
        // Subscribers follow runs.
        let mut changed: Vec<String> = rows
            .iter()
            .filter_map(|(e, _)| RunId::from_stream(&e.stream_id))
            .map(|run| run.to_string())
            .collect();
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
