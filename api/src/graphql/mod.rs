//! The GraphQL API: queries over the read models, operators' mutations, and a
//! subscription to run changes. The schema is kept in `api/schema.graphql`; a
//! test fails when the code and the file drift apart.

mod catalogue;
mod mutation;
mod query;
mod subscription;
mod types;

use std::sync::Arc;

use async_graphql::{Context, Error, ErrorExtensions, MergedObject, Schema};
use sp_commands::{Catalogues, Operator, OperatorError};
use sp_eventstore::Database;
use sp_projections::Change;
use tokio::sync::broadcast;

use crate::auth::{Caller, Denied, Scope};

pub use subscription::SubscriptionRoot;

#[derive(Debug, Default, MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(query::RunQuery, catalogue::CatalogueQuery);

#[derive(Debug, Default, MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(mutation::OperatorMutation, catalogue::CatalogueMutation);

pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What resolvers use.
#[derive(Debug, Clone)]
pub struct Services {
    pub db: Database,
    pub operator: Operator,
    pub catalogues: Catalogues,
    pub files: crate::files::Files,
    pub changes: broadcast::Sender<Change>,
    pub platforms: Vec<String>,
    pub anonymous_read: bool,
    pub max_sample_bytes: u64,
    /// How many VMs each platform may have at once.
    pub capacity: std::collections::BTreeMap<String, usize>,
    pub default_capacity: usize,
}

/// Deep or costly queries are refused before they run.
const MAX_DEPTH: usize = 10;
const MAX_COMPLEXITY: usize = 2_000;

pub fn schema(services: Arc<Services>) -> ApiSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(services)
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .finish()
}

/// The schema without services, for printing the SDL.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}

/// An error with a machine-readable code beside its message.
pub(crate) fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Services>> {
    ctx.data::<Arc<Services>>()
        .map_err(|_| coded("INTERNAL", "the API is not wired to its services"))
}

/// The caller, checked for `scope`. A request without a token is anonymous.
pub(crate) fn require(ctx: &Context<'_>, scope: Scope) -> async_graphql::Result<Caller> {
    let services = services(ctx)?;
    let caller = ctx
        .data::<Caller>()
        .cloned()
        .unwrap_or_else(|_| Caller::anonymous());
    match caller.authorize(scope, services.anonymous_read) {
        Ok(()) => Ok(caller),
        Err(Denied::Unauthenticated(m)) => Err(coded("UNAUTHENTICATED", m)),
        Err(Denied::Forbidden(m)) => Err(coded("FORBIDDEN", m)),
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %e, "GraphQL resolver failed");
    coded("INTERNAL", format!("internal error; reference {id}"))
}

pub(crate) fn operator_error(e: OperatorError) -> Error {
    match e {
        OperatorError::Invalid(m) => coded("INVALID_INPUT", m),
        OperatorError::NotFound(m) => coded("NOT_FOUND", m),
        OperatorError::Conflict(m) => coded("CONFLICT", m),
        OperatorError::Refused(m) => coded("REFUSED", m),
        OperatorError::Unavailable(m) => coded("UNAVAILABLE", m),
        OperatorError::Internal(m) => internal(m),
    }
}

/// A run id from the API: a UUID.
pub(crate) fn run_id(id: &str) -> async_graphql::Result<sp_domain::RunId> {
    uuid::Uuid::parse_str(id)
        .map(sp_domain::RunId)
        .map_err(|_| coded("INVALID_INPUT", format!("{id:?} is not a run id")))
}
