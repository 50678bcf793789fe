//! Writing what a batch leaves: a run's last state once, and many rows per
//! statement, so a model costs a few statements per batch, not one per event.

use std::collections::HashMap;

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
