//! `Run.estimate`: how long a run that is not finished has left, from its
//! remaining tests' recent runtimes on its platform.

use async_graphql::{Context, Result, SimpleObject};
use sp_domain::estimate::{self, RECENT_RUNS};
use sp_projections::queries;

use super::types::Run;
use super::{internal, run_id, services};

/// An estimate of the time a run has left.
#[derive(Debug, SimpleObject)]
pub struct RunEstimate {
    /// Milliseconds left, summing the median of each remaining test's last
    /// runs on the platform.
    pub remaining_ms: i64,
    /// Remaining tests with recorded runtimes.
    pub known: i32,
    /// Remaining tests never run on the platform (counted at the others'
    /// median).
    pub unknown: i32,
}

/// `None` for a finished run, or when no remaining test ever ran there.
pub async fn of(ctx: &Context<'_>, run: &Run) -> Result<Option<RunEstimate>> {
    if !matches!(
        run.status,
        super::types::RunStatus::Queued | super::types::RunStatus::Running
    ) {
        return Ok(None);
    }
    let services = services(ctx)?;
    let id = run_id(&run.id)?;
    let Some(state) = sp_projections::run_state(&*services.db.store, id)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let Some(current) = state.run.as_ref() else {
        return Ok(None);
    };
    let remaining: Vec<&str> = current
        .info
        .tests
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| !current.results.contains_key(*id))
        .collect();
    let history = queries::recent_runtimes(
        &services.db.pool,
        current.info.platform.as_str(),
        &remaining,
        RECENT_RUNS,
    )
    .await
    .map_err(internal)?;
    Ok(
        estimate::remaining(&remaining, &history).map(|e| RunEstimate {
            remaining_ms: i64::try_from(e.remaining_ms).unwrap_or(i64::MAX),
            known: i32::try_from(e.known).unwrap_or(i32::MAX),
            unknown: i32::try_from(e.unknown).unwrap_or(i32::MAX),
        }),
    )
}
