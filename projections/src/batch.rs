//! Writing what a batch leaves: a run's last state once, and many rows per
//! statement, so a model costs a few statements per batch, not one per event.

use std::collections::{BTreeMap, HashMap};

use sp_eventstore::{Tx, on_tx};

use crate::run_states::Folded;
use crate::runner::Step;

/// Bind parameters per statement, under SQLite's limit (32,766) and
/// PostgreSQL's (65,535).
const MAX_BINDS: usize = 30_000;

/// Rows per statement for rows of `columns` bound values.
pub(crate) fn rows_per_statement(columns: usize) -> usize {
    (MAX_BINDS / columns.max(1)).max(1)
}

/// Each run's last step in the batch (its state after the batch), in the
/// order of those last steps.
pub(crate) fn last_per_run<'s, 'e>(steps: &'s [Step<'e>]) -> Vec<(&'s Step<'e>, &'s Folded)> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        if step.run.is_some() {
            last.insert(&step.event.stream_id, i);
        }
    }
    let mut indices: Vec<usize> = last.into_values().collect();
    indices.sort_unstable();
    indices
        .into_iter()
        .filter_map(|i| steps[i].run.as_ref().map(|run| (&steps[i], run)))
        .collect()
}

/// `DELETE FROM table WHERE run_id IN (…)`, in as few statements as the
/// bind limit allows.
pub(crate) async fn delete_runs(
    tx: &mut Tx<'_>,
    table: &str,
    run_ids: &[String],
) -> Result<(), sqlx::Error> {
    for chunk in run_ids.chunks(rows_per_statement(1)) {
        on_tx!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new(format!("DELETE FROM {table} WHERE run_id IN ("));
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(id);
            }
            q.push(")");
            q.build().execute(c).await?.rows_affected()
        });
    }
    Ok(())
}

/// The stored (platform, status, verdict) of some runs: `select` is a
/// `SELECT platform, status, verdict FROM table WHERE run_id IN (`.
pub(crate) async fn stored_statuses(
    tx: &mut Tx<'_>,
    select: &str,
    run_ids: &[String],
) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
    let mut keys = Vec::with_capacity(run_ids.len());
    for chunk in run_ids.chunks(rows_per_statement(1)) {
        let rows: Vec<(String, String, Option<String>)> = on_tx!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new(select);
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(id);
            }
            q.push(")");
            q.build_query_as().fetch_all(c).await?
        });
        keys.extend(rows);
    }
    Ok(keys)
}

/// A table of counts per (platform, key), moved by what a batch does: a
/// count that reaches zero goes, as a rebuild would never have written it.
pub(crate) struct Counts {
    pub table: &'static str,
    pub key: &'static str,
    pub count: &'static str,
}

impl Counts {
    pub(crate) async fn apply(
        &self,
        tx: &mut Tx<'_>,
        mut moves: BTreeMap<(String, String), i64>,
    ) -> Result<(), sqlx::Error> {
        moves.retain(|_, n| *n != 0);
        if moves.is_empty() {
            return Ok(());
        }
        let Counts { table, key, count } = self;
        let sql = format!(
            "INSERT INTO {table} (platform, {key}, {count}) VALUES ($1, $2, $3)
             ON CONFLICT (platform, {key}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}"
        );
        for ((platform, k), n) in &moves {
            on_tx!(&mut *tx, c => sqlx::query(&sql)
                .bind(platform)
                .bind(k)
                .bind(*n)
                .execute(c)
                .await?
                .rows_affected());
        }
        let sql = format!("DELETE FROM {table} WHERE {count} = 0");
        on_tx!(&mut *tx, c => sqlx::query(&sql).execute(c).await?.rows_affected());
        Ok(())
    }
}
