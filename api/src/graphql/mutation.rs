//! Operators' mutations. Each needs the `operate` scope (a token's, or a
//! maintainer's) and records the caller as the actor of the events it
//! causes; a contributor may also run their own custom runs again.

use async_graphql::{Context, ID, Object, Result};

use sp_commands::ErrorKind;
use sp_domain::RunId;

use super::{coded, graphql_error, internal, require, run_id, services};
use crate::auth::{Caller, Scope};
use crate::people::login_of;

/// Refused unless `run` is a custom run of `caller`, who has room for one
/// more. A run that is not theirs, or does not exist, is refused alike.
async fn own_custom_run(ctx: &Context<'_>, caller: &Caller, run: RunId) -> Result<()> {
    let services = services(ctx)?;
    let row = sp_projections::queries::get_run(&services.db.pool, &run.to_string())
        .await
        .map_err(internal)?;
    let login = login_of(caller);
    let own = row.as_ref().is_some_and(|r| {
        r.trigger_kind == "custom" && login.is_some() && r.requested_by.as_deref() == login
    });
    let Some(login) = login.filter(|_| own) else {
        return Err(coded(
            ErrorKind::Forbidden,
            "a contributor may run again only their own custom runs",
        ));
    };
    let (waiting, today) = services
        .custom_runs_of(login)
        .await
        .map_err(graphql_error)?;
    services
        .contributor_limits
        .check(1, waiting, today)
        .map_err(|m| coded(ErrorKind::Refused, m))
}

#[derive(Debug, Default)]
pub struct OperatorMutation;

#[Object]
impl OperatorMutation {
    /// Queue a run per platform for a commit (every configured platform when
    /// none are named). Returns the new runs' ids.
    async fn enqueue_run(
        &self,
        ctx: &Context<'_>,
        repository: String,
        commit_sha: String,
        platforms: Option<Vec<String>>,
        note: Option<String>,
    ) -> Result<Vec<ID>> {
        let caller = require(ctx, Scope::Operate)?;
        let runs = services(ctx)?
            .operator
            .enqueue(
                &caller.actor,
                &repository,
                &commit_sha,
                &platforms.unwrap_or_default(),
                note,
            )
            .await
            .map_err(graphql_error)?;
        Ok(runs.into_iter().map(|r| ID(r.to_string())).collect())
    }

    /// Stop a run that has not finished.
    async fn cancel_run(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<bool> {
        let caller = require(ctx, Scope::Operate)?;
        services(ctx)?
            .operator
            .cancel(&caller.actor, run_id(&id)?, &reason)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }

    /// Run a finished run again: queues a new run of the same commit and
    /// platform, and returns its id. The finished run keeps its verdict.
    async fn retry_run(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(
            default = false,
            desc = "Run the catalogue as it is now (after accepting an output, say) instead of the old run's tests."
        )]
        current_catalogue: bool,
    ) -> Result<ID> {
        let run = run_id(&id)?;
        let caller = match require(ctx, Scope::Operate) {
            Ok(caller) => caller,
            // A contributor may run again their own custom runs, within
            // their limits.
            Err(refused) => {
                let caller = require(ctx, Scope::Contribute).map_err(|_| refused)?;
                own_custom_run(ctx, &caller, run).await?;
                caller
            }
        };
        let new = services(ctx)?
            .operator
            .retry(&caller.actor, run, current_catalogue)
            .await
            .map_err(graphql_error)?;
        Ok(ID(new.to_string()))
    }

    /// Maintenance: start no VMs on this platform until resumed. Returns
    /// whether the state changed.
    async fn pause_platform(
        &self,
        ctx: &Context<'_>,
        platform: String,
        note: String,
    ) -> Result<bool> {
        let caller = require(ctx, Scope::Operate)?;
        services(ctx)?
            .operator
            .set_paused(&caller.actor, &platform, true, &note)
            .await
            .map_err(graphql_error)
    }

    async fn resume_platform(
        &self,
        ctx: &Context<'_>,
        platform: String,
        note: String,
    ) -> Result<bool> {
        let caller = require(ctx, Scope::Operate)?;
        services(ctx)?
            .operator
            .set_paused(&caller.actor, &platform, false, &note)
            .await
            .map_err(graphql_error)
    }

    /// Queue nothing for this GitHub user's pushes and pull requests.
    async fn block_user(&self, ctx: &Context<'_>, login: String, reason: String) -> Result<bool> {
        let caller = require(ctx, Scope::Operate)?;
        services(ctx)?
            .operator
            .set_blocked(&caller.actor, &login, Some(&reason))
            .await
            .map_err(graphql_error)
    }

    async fn unblock_user(&self, ctx: &Context<'_>, login: String) -> Result<bool> {
        let caller = require(ctx, Scope::Operate)?;
        services(ctx)?
            .operator
            .set_blocked(&caller.actor, &login, None)
            .await
            .map_err(graphql_error)
    }
}
