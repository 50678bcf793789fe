//! Live run changes for the dashboard, pushed after the runs read model commits.

use async_graphql::{Context, ID, Result, Subscription};
use futures_util::Stream;
use futures_util::stream;
use sp_projections::{RunsProjection, queries};
use tokio::sync::broadcast::error::RecvError;

use super::types::{Run, RunFilter};
use super::{require, services};
use crate::auth::Scope;

#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every change of a run matching `filter` (and, with `runId`, of that
    /// run only), as the runs model now has it.
    async fn run_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
        run_id: Option<ID>,
    ) -> Result<impl Stream<Item = Run> + use<>> {
        require(ctx, Scope::Read)?;
        let services = services(ctx)?.clone();
        let filter = filter.unwrap_or_default();
        let only = run_id.map(|id| id.to_string());
        let changes = services.changes.subscribe();
        Ok(stream::unfold(
            (changes, services, filter, only),
            |(mut changes, services, filter, only)| async move {
                loop {
                    let change = match changes.recv().await {
                        Ok(change) => change,
                        // A slow subscriber misses changes, not the stream.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    };
                    // Other runs' changes cost this subscriber no query.
                    if change.projection != RunsProjection::NAME
                        || only.as_ref().is_some_and(|id| *id != change.key)
                    {
                        continue;
                    }
                    match queries::get_run(&services.db.pool, &change.key).await {
                        Ok(Some(row)) if filter.matches(&row) => {
                            return Some((Run::from(row), (changes, services, filter, only)));
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "cannot read a changed run"),
                    }
                }
            },
        ))
    }
}
