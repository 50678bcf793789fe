//! Live run changes for the dashboard, pushed after the runs read model commits.

use async_graphql::{Context, Result, Subscription};
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
    /// Every change of a run matching `filter`, as the runs model now has it.
    async fn run_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<RunFilter>,
    ) -> Result<impl Stream<Item = Run> + use<>> {
        require(ctx, Scope::Read)?;
        let services = services(ctx)?.clone();
        let filter = filter.unwrap_or_default();
        let changes = services.changes.subscribe();
        Ok(stream::unfold(
            (changes, services, filter),
            |(mut changes, services, filter)| async move {
                loop {
                    let change = match changes.recv().await {
                        Ok(change) => change,
                        // A slow subscriber misses changes, not the stream.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    };
                    if change.projection != RunsProjection::NAME {
                        continue;
                    }
                    match queries::get_run(&services.db.pool, &change.key).await {
                        Ok(Some(row)) if filter.matches(&row) => {
                            return Some((Run::from(row), (changes, services, filter)));
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "cannot read a changed run"),
                    }
                }
            },
        ))
    }
}
