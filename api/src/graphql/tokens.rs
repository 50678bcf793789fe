//! API tokens over GraphQL, for a token with the `admin` scope: the same
//! create, list and revoke as `sample-platform tokens`, recorded in the
//! access stream with the admin's token as the actor.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{graphql_error, require, services};
use crate::auth::{self, Scope, TokenError};

/// A token as listed: never its secret.
#[derive(Debug, SimpleObject)]
pub struct Token {
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new token's secret, shown once.
#[derive(Debug, SimpleObject)]
pub struct CreatedToken {
    pub name: String,
    pub secret: String,
}

#[derive(Debug, Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// Every token, revoked ones too (needs the admin scope).
    async fn tokens(&self, ctx: &Context<'_>) -> Result<Vec<Token>> {
        require(ctx, Scope::Admin)?;
        let rows = auth::list(&services(ctx)?.db.pool)
            .await
            .map_err(graphql_error)?;
        Ok(rows
            .into_iter()
            .map(|t| Token {
                name: t.name,
                scopes: t.scopes.split(',').map(String::from).collect(),
                created_at: t.created_at,
                revoked_at: t.revoked_at,
            })
            .collect())
    }
}

#[derive(Debug, Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Create a token with these scopes (read, operate, catalogue, admin);
    /// its secret is in the answer and nowhere else.
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<String>,
    ) -> Result<CreatedToken> {
        let caller = require(ctx, Scope::Admin)?;
        let db = &services(ctx)?.db;
        match auth::create(db, &name, &scopes, &caller.actor).await {
            Ok(secret) => Ok(CreatedToken { name, secret }),
            Err(TokenError::CreatedNotRecorded { error, .. }) => {
                // Every token must have its creation on record: without
                // one, it is taken back rather than handed out.
                let _ = sp_eventstore::tokens::revoke(&db.pool, &name).await;
                Err(graphql_error(TokenError::NotRecorded(error)))
            }
            Err(other) => Err(graphql_error(other)),
        }
    }

    /// Revoke the active token with this name.
    async fn revoke_token(&self, ctx: &Context<'_>, name: String) -> Result<bool> {
        let caller = require(ctx, Scope::Admin)?;
        auth::revoke(&services(ctx)?.db, &name, &caller.actor)
            .await
            .map_err(graphql_error)?;
        Ok(true)
    }
}
