//! People's roles over GraphQL: an admin gives a GitHub login a role
//! (reader takes it away), recorded in the access stream with the admin as
//! the actor.

use async_graphql::{Context, Object, Result, SimpleObject};

use super::{graphql_error, require, services};
use crate::auth::Scope;

/// A person with more than the reader's role.
#[derive(Debug, SimpleObject)]
pub struct PersonRole {
    pub login: String,
    /// reader, contributor, maintainer or admin.
    pub role: String,
}

#[derive(Debug, Default)]
pub struct PeopleQuery;

#[Object]
impl PeopleQuery {
    /// Everyone with a role above reader, the settings' admins included
    /// (needs the admin scope).
    async fn people(&self, ctx: &Context<'_>) -> Result<Vec<PersonRole>> {
        require(ctx, Scope::Admin)?;
        let granted = services(ctx)?
            .people
            .granted()
            .await
            .map_err(graphql_error)?;
        Ok(granted
            .into_iter()
            .map(|(login, role)| PersonRole {
                login,
                role: role.to_string(),
            })
            .collect())
    }
}

#[derive(Debug, Default)]
pub struct PeopleMutation;

#[Object]
impl PeopleMutation {
    /// Give a GitHub login a role: reader, contributor, maintainer or admin
    /// (reader takes any other away). Returns whether it changed.
    async fn set_role(&self, ctx: &Context<'_>, login: String, role: String) -> Result<bool> {
        let caller = require(ctx, Scope::Admin)?;
        services(ctx)?
            .people
            .set_role(&caller.actor, &login, &role)
            .await
            .map_err(graphql_error)
    }
}
