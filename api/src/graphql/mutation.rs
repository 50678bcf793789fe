//! Operators' mutations. Each needs a token with the `operate` scope and
//! records the token's name as the actor of the events it causes.

use async_graphql::{Context, ID, Object, Result};

use super::{graphql_error, require, run_id, services};
use crate::auth::Scope;

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
        let caller = require(ctx, Scope::Operate)?;
        let new = services(ctx)?
            .operator
            .retry(&caller.actor, run_id(&id)?, current_catalogue)
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
