//! Contributors' custom runs: a commit of their own fork, the tests they
//! choose, within their limits, telling GitHub nothing.

use async_graphql::{Context, ID, Object, Result};
use chrono::{Duration, Utc};
use sp_commands::{CustomRun, ErrorKind};
use sp_domain::custom::Selection;

use super::{coded, graphql_error, require, services};
use crate::auth::Scope;
use crate::github::oauth::OAuthError;
use crate::people::login_of;

#[derive(Debug, Default)]
pub struct CustomRunMutation;

#[Object]
impl CustomRunMutation {
    /// Queue a run per platform (every one when none are named) of a
    /// commit of your own fork, with the regression tests you choose by id
    /// or by category. Needs the contributor role; GitHub hears nothing of
    /// it. Returns the new runs' ids.
    #[allow(clippy::too_many_arguments)]
    async fn queue_custom_run(
        &self,
        ctx: &Context<'_>,
        repository: String,
        commit_sha: String,
        platforms: Option<Vec<String>>,
        #[graphql(default)] tests: Vec<String>,
        #[graphql(default)] categories: Vec<String>,
        note: Option<String>,
    ) -> Result<Vec<ID>> {
        let caller = require(ctx, Scope::Contribute)?;
        let services = services(ctx)?;
        let login = login_of(&caller).ok_or_else(|| {
            coded(
                ErrorKind::Forbidden,
                "custom runs are queued by a person signed in with GitHub, not by a token",
            )
        })?;
        let github = services.github.as_ref().ok_or_else(|| {
            coded(
                ErrorKind::Unavailable,
                "signing in with GitHub is not set up here",
            )
        })?;
        let repo = match github.repository(&repository).await {
            Ok(Some(repo)) => repo,
            Ok(None) => {
                return Err(coded(
                    ErrorKind::NotFound,
                    format!("GitHub has no repository {repository} (or does not show it)"),
                ));
            }
            Err(OAuthError::Invalid(m)) => return Err(coded(ErrorKind::InvalidInput, m)),
            Err(e) => return Err(coded(ErrorKind::Unavailable, e.to_string())),
        };
        repo.testable_by(login, &services.repositories)
            .map_err(|m| coded(ErrorKind::Forbidden, m))?;
        let (waiting, today) = services
            .custom_runs_of(login)
            .await
            .map_err(graphql_error)?;
        let selection = Selection { tests, categories };
        let runs = services
            .operator
            .enqueue_custom(
                CustomRun {
                    actor: &caller.actor,
                    login,
                    repository: &repo.full_name,
                    commit_sha: &commit_sha,
                    platforms: &platforms.unwrap_or_default(),
                    selection: &selection,
                    note,
                },
                |adding| services.contributor_limits.check(adding, waiting, today),
            )
            .await
            .map_err(graphql_error)?;
        Ok(runs.into_iter().map(|r| ID(r.to_string())).collect())
    }
}

impl super::Services {
    /// A person's custom runs queued or running, and queued in the last day.
    pub(crate) async fn custom_runs_of(
        &self,
        login: &str,
    ) -> Result<(u64, u64), sp_commands::Error> {
        let since = Utc::now() - Duration::hours(24);
        let (waiting, today) = sp_projections::queries::custom_runs_of(&self.db.pool, login, since)
            .await
            .map_err(|e| sp_commands::Error::unavailable(e.to_string()))?;
        Ok((waiting.max(0) as u64, today.max(0) as u64))
    }
}
