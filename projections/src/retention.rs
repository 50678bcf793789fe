//! The `retention` read model: what the retention manager works from and
//! what the dashboard says of deleted files. Each run's build artifact and
//! produced outputs (from `ArtifactFetched` and `SampleResult`), which runs'
//! files of a kind retention is done with, and which files it deleted.

use async_trait::async_trait;
use sp_domain::RunEvent;
use sp_domain::retention::{FileKind, RetentionEvent, STREAM};
use sp_domain::verdict::OutputProduced;
use sp_eventstore::{Tx, on_tx};

use crate::batch::rows_per_statement;
use crate::runner::{Projection, ProjectionError, Step, decode};

#[derive(Debug, Default)]
pub struct RetentionProjection;

impl RetentionProjection {
    pub const NAME: &'static str = "retention";
}

#[async_trait]
impl Projection for RetentionProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["run_files", "retention_done", "deleted_files"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let mut held: Vec<(String, &'static str, String)> = Vec::new();
        let mut changed = Vec::new();
        for step in steps {
            if let Some(folded) = &step.run {
                let run = folded.row.run_id.to_string();
                match &folded.event {
                    RunEvent::ArtifactFetched(a) => {
                        held.push((run, FileKind::Artifact.as_str(), a.sha256.clone()))
                    }
                    RunEvent::SampleResult(r) => {
                        for output in &r.result.outputs {
                            if let OutputProduced::Sha256 { sha256 } = &output.produced {
                                held.push((run.clone(), FileKind::Output.as_str(), sha256.clone()));
                            }
                        }
                    }
                    _ => {}
                }
            } else if step.event.stream_id == STREAM {
                // Files are recorded before a deletion that names them.
                insert_held(tx, &mut held).await?;
                if let RetentionEvent::RunFilesDeleted {
                    at,
                    run,
                    kind,
                    deleted,
                    kept,
                    policy,
                } = decode::<RetentionEvent>(step.event)?
                {
                    let sql = "INSERT INTO retention_done (run_id, kind, deleted, kept, deleted_at, policy)
                               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, kind) DO NOTHING";
                    on_tx!(&mut *tx, c => sqlx::query(sql)
                        .bind(run.to_string())
                        .bind(kind.as_str())
                        .bind(i64::try_from(deleted.len()).unwrap_or(i64::MAX))
                        .bind(i64::try_from(kept.len()).unwrap_or(i64::MAX))
                        .bind(at)
                        .bind(&policy)
                        .execute(c)
                        .await?
                        .rows_affected());
                    for chunk in deleted.chunks(rows_per_statement(4)) {
                        on_tx!(&mut *tx, c => {
                            let mut q = sqlx::QueryBuilder::new(
                                "INSERT INTO deleted_files (kind, key, deleted_at, policy) ",
                            );
                            q.push_values(chunk, |mut b, key| {
                                b.push_bind(kind.as_str())
                                    .push_bind(key)
                                    .push_bind(at)
                                    .push_bind(&policy);
                            });
                            q.push(" ON CONFLICT (kind, key) DO NOTHING");
                            q.build().execute(c).await?.rows_affected()
                        });
                    }
                    changed.push(run.to_string());
                }
            }
        }
        insert_held(tx, &mut held).await?;
        changed.dedup();
        Ok(changed)
    }
}

async fn insert_held(
    tx: &mut Tx<'_>,
    held: &mut Vec<(String, &'static str, String)>,
) -> Result<(), ProjectionError> {
    for chunk in held.chunks(rows_per_statement(3)) {
        on_tx!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO run_files (run_id, kind, key) ");
            q.push_values(chunk, |mut b, (run, kind, key)| {
                b.push_bind(run).push_bind(*kind).push_bind(key);
            });
            q.push(" ON CONFLICT (run_id, kind, key) DO NOTHING");
            q.build().execute(c).await?.rows_affected()
        });
    }
    held.clear();
    Ok(())
}
