//! The `sample_results` read model: each regression test's outcome in a run's
//! current attempt, judged with the domain's own rules against the run's
//! snapshot of the test, with the definition it was judged by and the command
//! line that reproduces it. A retry starts the run's results afresh.

use std::collections::HashMap;

use async_trait::async_trait;
use sp_domain::RunEvent;
use sp_domain::verdict::{find_test, judge};

use crate::batch::{delete_runs, rows_per_statement};
use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;

#[derive(Debug, Default)]
pub struct ResultsProjection;

impl ResultsProjection {
    pub const NAME: &'static str = "results";
}

const INSERT: &str = "INSERT INTO sample_results (run_id, test_id, attempt, categories, passed,
    exit_code, runtime_ms, timed_out, mismatches, outputs, definition, reproduce)";
/// PostgreSQL's rows: one array per column.
const UNNEST: &str = " SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::text[],
    $5::bool[], $6::int4[], $7::int8[], $8::bool[], $9::text[], $10::text[], $11::text[],
    $12::text[])";
const COLUMNS: usize = 12;
const ON_CONFLICT: &str = " ON CONFLICT (run_id, test_id) DO UPDATE SET attempt = excluded.attempt,
    passed = excluded.passed, exit_code = excluded.exit_code,
    runtime_ms = excluded.runtime_ms, timed_out = excluded.timed_out,
    mismatches = excluded.mismatches, outputs = excluded.outputs,
    definition = excluded.definition, reproduce = excluded.reproduce";

/// The program a person reproduces a test with: their build of the commit,
/// named after the repository (`CCExtractor/ccextractor`: `ccextractor`).
fn program(repository: &str) -> &str {
    repository.rsplit('/').next().unwrap_or(repository)
}

/// One row of the model.
struct Row {
    run_id: String,
    test_id: String,
    attempt: i32,
    categories: String,
    passed: bool,
    exit_code: i32,
    runtime_ms: i64,
    timed_out: bool,
    mismatches: String,
    outputs: String,
    definition: String,
    reproduce: String,
}

#[async_trait]
impl Projection for ResultsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sample_results"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        // A retry empties the run's results; results after it are kept, the
        // last one per test winning.
        let mut retried: Vec<String> = Vec::new();
        let mut rows: HashMap<(String, String), (usize, Row)> = HashMap::new();
        let mut changed: Vec<String> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let Some(folded) = &step.run else { continue };
            let run_id = folded.row.run_id.to_string();
            match &folded.event {
                RunEvent::RetryScheduled(_) => {
                    rows.retain(|(r, _), _| *r != run_id);
                    retried.push(run_id.clone());
                }
                RunEvent::SampleResult(e) => {
                    let Some(test) = find_test(&folded.tests, &e.result.test_id) else {
                        continue;
                    };
                    let mismatches = judge(test, Some(&e.result));
                    let json = |v: serde_json::Result<String>| v.unwrap_or_else(|_| "[]".into());
                    let row = Row {
                        run_id: run_id.clone(),
                        test_id: e.result.test_id.clone(),
                        attempt: i32::try_from(e.attempt).unwrap_or(i32::MAX),
                        categories: test.categories.join(","),
                        passed: mismatches.is_empty(),
                        exit_code: e.result.exit_code,
                        runtime_ms: i64::try_from(e.result.runtime_ms).unwrap_or(i64::MAX),
                        timed_out: e.result.timed_out,
                        mismatches: json(serde_json::to_string(&mismatches)),
                        outputs: json(serde_json::to_string(&e.result.outputs)),
                        definition: test.definition_hash(),
                        reproduce: test.reproduce(program(&folded.row.repository)),
                    };
                    rows.insert((run_id.clone(), e.result.test_id.clone()), (i, row));
                }
                _ => continue,
            }
            if changed.last() != Some(&run_id) {
                changed.push(run_id);
            }
        }
        retried.dedup();
        delete_runs(tx, "sample_results", &retried).await?;
        let mut rows: Vec<(usize, Row)> = rows.into_values().collect();
        rows.sort_unstable_by_key(|(i, _)| *i);
        let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
        match tx {
            // One statement of twelve arrays: PostgreSQL plans it once,
            // where a VALUES list of thousands of rows is parsed anew.
            Tx::Postgres(_) if rows.is_empty() => {}
            Tx::Postgres(t) => {
                let column = |f: fn(&Row) -> &str| rows.iter().map(f).collect::<Vec<_>>();
                sqlx::query(&format!("{INSERT}{UNNEST}{ON_CONFLICT}"))
                    .bind(column(|r| &r.run_id))
                    .bind(column(|r| &r.test_id))
                    .bind(rows.iter().map(|r| r.attempt).collect::<Vec<_>>())
                    .bind(column(|r| &r.categories))
                    .bind(rows.iter().map(|r| r.passed).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.exit_code).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.runtime_ms).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.timed_out).collect::<Vec<_>>())
                    .bind(column(|r| &r.mismatches))
                    .bind(column(|r| &r.outputs))
                    .bind(column(|r| &r.definition))
                    .bind(column(|r| &r.reproduce))
                    .execute(&mut **t)
                    .await?;
            }
            Tx::Sqlite(t) => {
                for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
                    let mut q = sqlx::QueryBuilder::new(INSERT);
                    q.push(" ");
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(&r.run_id)
                            .push_bind(&r.test_id)
                            .push_bind(r.attempt)
                            .push_bind(&r.categories)
                            .push_bind(r.passed)
                            .push_bind(r.exit_code)
                            .push_bind(r.runtime_ms)
                            .push_bind(r.timed_out)
                            .push_bind(&r.mismatches)
                            .push_bind(&r.outputs)
                            .push_bind(&r.definition)
                            .push_bind(&r.reproduce);
                    });
                    q.push(ON_CONFLICT);
                    q.build().execute(&mut **t).await?;
                }
            }
        }
        changed.dedup();
        Ok(changed)
    }
}
