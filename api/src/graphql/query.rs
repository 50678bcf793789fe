//! Queries.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, ID, Object, Result};
use sp_projections::queries;

use super::types::{
    AbandonedVm, AuditEntry, AuditLogFilter, BlockedUser, PlatformQueue, QueueEntry, Run,
    RunFilter, TestOutcome,
};
use super::{coded, graphql_error, internal, require, run_id, services};
use crate::auth::Scope;
use sp_commands::ErrorKind;

const DEFAULT_PAGE: i32 = 20;

/// Streams `auditLog` shows only to a caller with the operate scope.
const OPERATORS_STREAMS: [&str; 2] = [sp_domain::blocklist::STREAM, sp_domain::access::STREAM];
const MAX_PAGE: i32 = 100;

/// A connection's page size: `first`, or the default; a clear error
/// beyond the maximum.
fn page_size(first: Option<i32>) -> Result<usize> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    match usize::try_from(first) {
        Ok(n) if first <= MAX_PAGE => Ok(n),
        _ => Err(coded(
            ErrorKind::InvalidInput,
            format!("first must be 0 to {MAX_PAGE}"),
        )),
    }
}

#[derive(Debug, Default)]
pub struct RunQuery;

#[ComplexObject]
impl PlatformQueue {
    /// The platform's waiting runs in the order they will get a VM
    /// (priority, then queue order), as a Relay connection.
    #[graphql(
        complexity = "1 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn waiting(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "The cursor of the last entry of the previous page.")] after: Option<
            String,
        >,
    ) -> Result<Connection<String, QueueEntry>> {
        require(ctx, Scope::Read)?;
        let first = page_size(first)?;
        let after = match after {
            Some(cursor) => Some(
                cursor
                    .parse::<queries::QueueCursor>()
                    .map_err(|m| coded(ErrorKind::InvalidInput, m))?,
            ),
            None => None,
        };
        let (page, more) = queries::waiting(&services(ctx)?.db.pool, &self.platform, after, first)
            .await
            .map_err(internal)?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            page.into_iter()
                .map(|(entry, cursor)| Edge::new(cursor.to_string(), QueueEntry::from(entry))),
        );
        Ok(connection)
    }
}

#[Object]
impl RunQuery {
    /// Runs, newest first, as a Relay connection. Costs its page size times
    /// what each run asks for.
    #[graphql(
        complexity = "1 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "The cursor of the last run of the previous page.")] after: Option<String>,
        filter: Option<RunFilter>,
    ) -> Result<Connection<String, Run>> {
        require(ctx, Scope::Read)?;
        let services = services(ctx)?;
        let first = page_size(first)?;
        let after = match after {
            Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
                coded(
                    ErrorKind::InvalidInput,
                    format!("{cursor:?} is not a cursor of runs"),
                )
            })?),
            None => None,
        };
        let filter = filter
            .unwrap_or_default()
            .to_query()
            .map_err(|m| coded(ErrorKind::InvalidInput, m))?;
        let (rows, more) = queries::list_runs(&services.db.pool, &filter, first, after)
            .await
            .map_err(internal)?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            rows.into_iter()
                .map(|row| Edge::new(row.seq.to_string(), Run::from(row))),
        );
        Ok(connection)
    }

    /// One run.
    async fn run(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Run>> {
        require(ctx, Scope::Read)?;
        run_id(&id)?;
        let row = queries::get_run(&services(ctx)?.db.pool, &id)
            .await
            .map_err(internal)?;
        Ok(row.map(Run::from))
    }

    /// Each platform's running runs, waiting runs (a page at a time) and
    /// maintenance state (one platform, or all configured ones).
    #[graphql(complexity = "200 + child_complexity")]
    async fn queue(
        &self,
        ctx: &Context<'_>,
        platform: Option<String>,
    ) -> Result<Vec<PlatformQueue>> {
        require(ctx, Scope::Read)?;
        let services = services(ctx)?;
        let pool = &services.db.pool;
        let running = queries::running(pool, platform.as_deref())
            .await
            .map_err(internal)?;
        let states = queries::platform_states(pool).await.map_err(internal)?;
        let mut names: Vec<String> = match platform {
            Some(p) => vec![p],
            None => services.platforms.clone(),
        };
        for e in &running {
            if !names.contains(&e.platform) {
                names.push(e.platform.clone());
            }
        }
        let mut queues = Vec::with_capacity(names.len());
        for name in names {
            let state = states.iter().find(|s| s.platform == name);
            let (waiting_count, oldest_waiting_since) = queries::waiting_summary(pool, &name)
                .await
                .map_err(internal)?;
            queues.push(PlatformQueue {
                paused: state.is_some_and(|s| s.paused),
                maintenance_note: state.filter(|s| s.paused).map(|s| s.note.clone()),
                waiting_count,
                running: running
                    .iter()
                    .filter(|e| e.platform == name)
                    .cloned()
                    .map(QueueEntry::from)
                    .collect(),
                oldest_waiting_since,
                capacity: i32::try_from(
                    services
                        .capacity
                        .get(&name)
                        .copied()
                        .unwrap_or(services.default_capacity),
                )
                .unwrap_or(i32::MAX),
                platform: name,
            });
        }
        Ok(queues)
    }

    /// VMs that need a person: deleting them failed until the platform gave up.
    #[graphql(complexity = "20 + child_complexity")]
    async fn abandoned_vms(&self, ctx: &Context<'_>) -> Result<Vec<AbandonedVm>> {
        require(ctx, Scope::Read)?;
        let rows = queries::vms_with_status(&services(ctx)?.db.pool, "abandoned")
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(AbandonedVm::from).collect())
    }

    /// Each regression test's outcome in the run's current attempt.
    #[graphql(complexity = "50 + child_complexity")]
    async fn results(&self, ctx: &Context<'_>, run_id: ID) -> Result<Vec<TestOutcome>> {
        require(ctx, Scope::Read)?;
        super::run_id(&run_id)?;
        let rows = queries::results(&services(ctx)?.db.pool, &run_id)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(TestOutcome::from).collect())
    }

    /// Every event of a run in order, with who, why and when.
    #[graphql(complexity = "50 + child_complexity")]
    async fn audit_trail(&self, ctx: &Context<'_>, run_id: ID) -> Result<Vec<AuditEntry>> {
        require(ctx, Scope::Read)?;
        super::run_id(&run_id)?;
        let rows = queries::audit_trail(&services(ctx)?.db.pool, &run_id)
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Every stream's events, newest first, as a Relay connection: runs,
    /// the catalogue (who accepted which output, and why), deliveries,
    /// pull requests, operators' actions, tokens. The blocklist and tokens
    /// (streams `blocked-users` and `access`) need the operate scope, as
    /// `blockedUsers` does. Costs its page size.
    #[graphql(
        complexity = "1 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "The cursor of the last entry of the previous page.")] after: Option<
            String,
        >,
        filter: Option<AuditLogFilter>,
    ) -> Result<Connection<String, AuditEntry>> {
        let caller = require(ctx, Scope::Read)?;
        let first = page_size(first)?;
        let after = match after {
            Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
                coded(
                    ErrorKind::InvalidInput,
                    format!("{cursor:?} is not a cursor of the audit log"),
                )
            })?),
            None => None,
        };
        let mut filter = filter
            .unwrap_or_default()
            .into_query()
            .map_err(|m| coded(ErrorKind::InvalidInput, m))?;
        // Who is blocked, and who holds which token, is for operators, as
        // `blockedUsers` is, and for admins, who manage the tokens.
        if !caller.scopes.contains(&Scope::Operate) && !caller.scopes.contains(&Scope::Admin) {
            filter.hidden_streams = OPERATORS_STREAMS.iter().map(|s| s.to_string()).collect();
        }
        let (rows, more) = queries::audit_log(&services(ctx)?.db.pool, &filter, first, after)
            .await
            .map_err(internal)?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            rows.into_iter()
                .map(|row| Edge::new(row.position.to_string(), AuditEntry::from(row))),
        );
        Ok(connection)
    }

    /// The run as it was just after the event at global `position`: folded
    /// from its events up to there. Null when the run did not exist yet.
    #[graphql(complexity = "50 + child_complexity")]
    async fn run_as_of(&self, ctx: &Context<'_>, run_id: ID, position: i64) -> Result<Option<Run>> {
        require(ctx, Scope::Read)?;
        let id = super::run_id(&run_id)?;
        let row = sp_projections::run_as_of(&*services(ctx)?.db.store, id, position)
            .await
            .map_err(internal)?;
        Ok(row.map(Run::from))
    }

    /// GitHub users whose pushes and pull requests queue nothing.
    async fn blocked_users(&self, ctx: &Context<'_>) -> Result<Vec<BlockedUser>> {
        require(ctx, Scope::Operate)?;
        let users = services(ctx)?
            .operator
            .blocked_users()
            .await
            .map_err(graphql_error)?;
        Ok(users
            .into_iter()
            .map(|(login, reason)| BlockedUser { login, reason })
            .collect())
    }
}
