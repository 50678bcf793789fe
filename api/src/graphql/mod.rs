//! The GraphQL API: queries over the read models, operators' mutations, and a
//! subscription to run changes. The schema is kept in `api/schema.graphql`; a
//! test fails when the code and the file drift apart.

mod catalogue;
mod comparison;
mod custom;
mod estimate;
mod mutation;
mod people;
mod query;
mod subscription;
mod tokens;
mod types;

use std::sync::Arc;

use async_graphql::{Context, Error, ErrorExtensions, MergedObject, Schema};
use sp_commands::{Catalogues, ErrorKind, Operator};
use sp_eventstore::Database;
use sp_projections::Change;
use tokio::sync::broadcast;

use crate::auth::{Caller, Scope};

pub use subscription::SubscriptionRoot;

#[derive(Debug, Default, MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    query::RunQuery,
    catalogue::CatalogueQuery,
    tokens::TokenQuery,
    people::PeopleQuery,
);

#[derive(Debug, Default, MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::OperatorMutation,
    catalogue::CatalogueMutation,
    tokens::TokenMutation,
    people::PeopleMutation,
    custom::CustomRunMutation,
);

pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What resolvers use.
#[derive(Debug, Clone)]
pub struct Services {
    pub db: Database,
    pub operator: Operator,
    pub catalogues: Catalogues,
    pub files: sp_files::Files,
    pub changes: broadcast::Sender<Change>,
    /// Sessions and roles of people signed in with GitHub.
    pub people: crate::people::People,
    /// GitHub for people: whose a repository is (when sign-in is set up).
    pub github: Option<crate::github::oauth::GithubOAuth>,
    /// The repositories this platform serves (empty: any).
    pub repositories: Vec<String>,
    /// How many custom runs one person may have.
    pub contributor_limits: sp_domain::custom::Limits,
    pub platforms: Vec<String>,
    pub anonymous_read: bool,
    pub max_sample_bytes: u64,
    /// How many VMs each platform may have at once.
    pub capacity: std::collections::BTreeMap<String, usize>,
    pub default_capacity: usize,
}

/// Deep or costly queries are refused before they run. The deepest query
/// we must take is GraphiQL's introspection (`__schema types fields args
/// type`, nine `ofType`, `kind`): 15; complexity bounds the cost.
const MAX_DEPTH: usize = 15;
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

/// The GraphQL code of each kind of error, beside its message.
fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "INVALID_INPUT",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::Forbidden => "FORBIDDEN",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::Conflict => "CONFLICT",
        ErrorKind::TooLarge => "TOO_LARGE",
        ErrorKind::Refused => "REFUSED",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::Internal => "INTERNAL",
    }
}

/// The one place where a use case's failure becomes a GraphQL error.
pub(crate) fn graphql_error(e: impl Into<sp_commands::Error>) -> Error {
    let e = e.into();
    let code = code(e.kind);
    Error::new(crate::http::public_message(&e)).extend_with(|_, x| x.set("code", code))
}

/// An error of `kind` with this message.
pub(crate) fn coded(kind: ErrorKind, message: impl Into<String>) -> Error {
    graphql_error(sp_commands::Error::new(kind, message))
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<Services>> {
    ctx.data::<Arc<Services>>()
        .map_err(|_| coded(ErrorKind::Internal, "the API is not wired to its services"))
}

/// The caller, checked for `scope`. A request without a token is anonymous.
pub(crate) fn require(ctx: &Context<'_>, scope: Scope) -> async_graphql::Result<Caller> {
    let services = services(ctx)?;
    let caller = ctx
        .data::<Caller>()
        .cloned()
        .unwrap_or_else(|_| Caller::anonymous());
    caller
        .authorize(scope, services.anonymous_read)
        .map_err(graphql_error)?;
    Ok(caller)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    coded(ErrorKind::Internal, e.to_string())
}

/// A run id from the API: a UUID.
pub(crate) fn run_id(id: &str) -> async_graphql::Result<sp_domain::RunId> {
    id.parse()
        .map_err(|e: sp_domain::ids::InvalidRunId| coded(ErrorKind::InvalidInput, e.to_string()))
}
