//! Reading the read models.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sp_domain::RunId;
use sp_domain::comparison::{self, Class, Observations};
use sp_eventstore::Pool;
use sqlx::{FromRow, Row};

use crate::run_view::RunRow;
use sp_eventstore::on_pool;

/// Filters of the runs listing; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub platform: Option<String>,
    pub status: Option<String>,
    /// Only runs whose verdict is this (`pass`, `fail`).
    pub verdict: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub pull_request: Option<i64>,
    pub commit_prefix: Option<String>,
}

#[derive(Debug)]
enum Param {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

const RUN_COLUMNS: &str = "run_id, seq, repository, commit_sha, platform, trigger_kind, branch, pull_request, \
    requested_by, priority, status, stage, attempt, vm_name, deadline_at, deadline_kind, eligible_at, \
    queued_at, started_at, finished_at, verdict, passed, failed, samples_done, samples_total, \
    superseded_by, final_reason, last_problem, version, last_position";

/// A page of runs, newest first, after the run with sequence `after`.
/// Returns the runs and whether more follow.
pub async fn list_runs(
    pool: &Pool,
    filter: &RunFilter,
    first: usize,
    after: Option<i64>,
) -> Result<(Vec<RunRow>, bool), sqlx::Error> {
    let mut w = Conditions::default();
    if let Some(v) = &filter.platform {
        w.add("platform = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.status {
        w.add("status = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.verdict {
        w.add("verdict = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.repository {
        w.add("repository = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.branch {
        w.add("branch = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = filter.pull_request {
        w.add("pull_request = ?", [Param::Int(v)]);
    }
    if let Some(v) = &filter.commit_prefix {
        // A range rather than LIKE, so the commit index serves it on both
        // backends: SHAs are lower-case hex, and 'g' sorts after every digit.
        let prefix = v.to_ascii_lowercase();
        w.add("commit_sha >= ?", [Param::Text(prefix.clone())]);
        w.add("commit_sha < ?", [Param::Text(format!("{prefix}g"))]);
    }
    if let Some(v) = after {
        w.add("seq < ?", [Param::Int(v)]);
    }
    w.page(
        pool,
        &format!("SELECT {RUN_COLUMNS} FROM runs"),
        "seq DESC",
        first,
    )
    .await
}

/// The WHERE clauses of a filtered page and their parameters.
#[derive(Debug, Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    /// A clause whose `?`s take `params`, in order.
    fn add(&mut self, clause: &str, params: impl IntoIterator<Item = Param>) {
        let mut numbered = String::new();
        let mut parts = clause.split('?');
        numbered.push_str(parts.next().unwrap_or_default());
        let mut params = params.into_iter();
        for part in parts {
            if let Some(param) = params.next() {
                self.params.push(param);
            }
            numbered.push_str(&format!("${}{part}", self.params.len()));
        }
        self.clauses.push(numbered);
    }

    /// Up to `first` rows of `select` that meet every clause, in `order`;
    /// and whether more follow.
    async fn page<T>(
        mut self,
        pool: &Pool,
        select: &str,
        order: &str,
        first: usize,
    ) -> Result<(Vec<T>, bool), sqlx::Error>
    where
        T: Send
            + Unpin
            + for<'r> FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>,
    {
        let limit = i64::try_from(first).unwrap_or(i64::MAX).saturating_add(1);
        self.params.push(Param::Int(limit));
        let filter = if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        };
        let sql = format!(
            "{select} {filter} ORDER BY {order} LIMIT ${}",
            self.params.len()
        );
        let mut rows: Vec<T> = on_pool!(pool, p => {
            let mut q = sqlx::query_as(&sql);
            for param in &self.params {
                q = match param {
                    Param::Text(s) => q.bind(s.as_str()),
                    Param::Int(i) => q.bind(*i),
                    Param::Time(t) => q.bind(*t),
                };
            }
            q.fetch_all(p).await?
        });
        let more = rows.len() > first;
        rows.truncate(first);
        Ok((rows, more))
    }
}

/// Runs the queue shows waiting for their build, in queue order.
pub async fn runs_awaiting_artifact(pool: &Pool) -> Result<Vec<RunRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs
         WHERE run_id IN (SELECT run_id FROM queue_entries WHERE stage = 'awaiting_artifact')
         ORDER BY seq"
    );
    Ok(on_pool!(pool, p => sqlx::query_as::<_, RunRow>(&sql).fetch_all(p).await?))
}

pub async fn get_run(pool: &Pool, run_id: &str) -> Result<Option<RunRow>, sqlx::Error> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1");
    Ok(on_pool!(pool, p => {
        sqlx::query_as::<_, RunRow>(&sql).bind(run_id).fetch_optional(p).await?
    }))
}

/// One waiting or running run in a platform's queue.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QueueEntry {
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    pub platform: String,
    /// 1 for the run that gets the next VM, among waiting runs.
    pub position: i64,
    pub priority: i32,
    pub status: String,
    pub stage: String,
    pub attempt: i32,
    pub queued_at: DateTime<Utc>,
    pub waiting_since: DateTime<Utc>,
    pub eligible_at: Option<DateTime<Utc>>,
    pub deadline_at: DateTime<Utc>,
    pub deadline_kind: String,
    pub vm_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PlatformState {
    pub platform: String,
    pub paused: bool,
    pub note: String,
    pub changed_at: DateTime<Utc>,
    pub changed_by: String,
}

const QUEUE_COLUMNS: &str = "run_id, platform, CAST(0 AS BIGINT) AS position, priority, status, stage, attempt, \
    queued_at, waiting_since, eligible_at, deadline_at, deadline_kind, vm_name";

/// Where a page of a platform's waiting runs ends: the last entry's place in
/// queue order (priority, then seq) and its position, so the next page
/// starts after it without counting what came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCursor {
    pub priority: i32,
    pub seq: i64,
    pub position: i64,
}

impl std::fmt::Display for QueueCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.priority, self.seq, self.position)
    }
}

impl std::str::FromStr for QueueCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a queue cursor (priority:seq:position)");
        let mut parts = s.split(':');
        let mut next = || parts.next().ok_or_else(bad);
        let cursor = QueueCursor {
            priority: next()?.parse().map_err(|_| bad())?,
            seq: next()?.parse().map_err(|_| bad())?,
            position: next()?.parse().map_err(|_| bad())?,
        };
        match parts.next() {
            None => Ok(cursor),
            Some(_) => Err(bad()),
        }
    }
}

/// One page of a platform's waiting runs in the order they will get a VM
/// (priority, then queue order), after `after`; and whether more follow.
/// Served by the (platform, status, priority, seq) index: a page costs its
/// size, however long the queue.
pub async fn waiting(
    pool: &Pool,
    platform: &str,
    after: Option<QueueCursor>,
    first: usize,
) -> Result<(Vec<(QueueEntry, QueueCursor)>, bool), sqlx::Error> {
    let limit = i64::try_from(first).unwrap_or(i64::MAX).saturating_add(1);
    let (priority, seq, before) = match after {
        Some(c) => (c.priority, c.seq, c.position),
        None => (i32::MAX, i64::MIN, 0),
    };
    let sql = format!(
        "SELECT {QUEUE_COLUMNS}, seq FROM queue_entries
         WHERE platform = $1 AND status = 'queued'
           AND (priority < $2 OR (priority = $2 AND seq > $3))
         ORDER BY priority DESC, seq
         LIMIT $4"
    );
    let rows: Vec<(QueueEntry, i64)> = on_pool!(pool, p => {
        sqlx::query(&sql)
            .bind(platform)
            .bind(priority)
            .bind(seq)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(|row| Ok((QueueEntry::from_row(row)?, row.try_get("seq")?)))
            .collect::<Result<_, sqlx::Error>>()?
    });
    let more = rows.len() > first;
    let page = rows
        .into_iter()
        .take(first)
        .zip(before + 1..)
        .map(|((mut entry, seq), position)| {
            entry.position = position;
            let cursor = QueueCursor {
                priority: entry.priority,
                seq,
                position,
            };
            (entry, cursor)
        })
        .collect();
    Ok((page, more))
}

/// How many runs wait on a platform, and since when the longest has.
pub async fn waiting_summary(
    pool: &Pool,
    platform: &str,
) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    // The count is kept by the queue model; the oldest wait is the first
    // entry of the (platform, status, waiting_since) index.
    let sql = "SELECT COALESCE((SELECT entries FROM queue_counts
                                WHERE platform = $1 AND status = 'queued'), 0),
                      (SELECT waiting_since FROM queue_entries
                       WHERE platform = $1 AND status = 'queued'
                       ORDER BY waiting_since LIMIT 1)";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).bind(platform).fetch_one(p).await?))
}

/// Runs in the queue per platform and status (`queued`, `running`), as the
/// queue model keeps count.
pub async fn queue_counts(pool: &Pool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let sql = "SELECT platform, status, entries FROM queue_counts ORDER BY platform, status";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).fetch_all(p).await?))
}

/// Runs ever queued per platform and outcome (`pass`, `fail`, `error`,
/// `cancelled`, `superseded`, and the queue's `queued` and `running`), as
/// the runs model keeps count.
pub async fn run_counts(pool: &Pool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let sql = "SELECT platform, outcome, runs FROM run_counts ORDER BY platform, outcome";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).fetch_all(p).await?))
}

/// A person's custom runs: how many are queued or running, and how many
/// were queued since `since`.
pub async fn custom_runs_of(
    pool: &Pool,
    login: &str,
    since: DateTime<Utc>,
) -> Result<(i64, i64), sqlx::Error> {
    let sql =
        "SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END), 0),
                      COALESCE(SUM(CASE WHEN queued_at >= $2 THEN 1 ELSE 0 END), 0)
               FROM runs WHERE trigger_kind = 'custom' AND requested_by = $1";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).bind(login).bind(since).fetch_one(p).await?))
}

/// VMs not yet deleted, per platform and status: the index on (status,
/// platform) keeps this to the live ones however many were deleted.
pub async fn vm_counts(pool: &Pool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let sql = "SELECT platform, status, COUNT(*) FROM vms
               WHERE status IN ('requested', 'created', 'delete_requested', 'abandoned')
               GROUP BY platform, status ORDER BY platform, status";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).fetch_all(p).await?))
}

/// Runs that have a VM or are getting one (at most the platforms'
/// capacities), per platform in queue order.
pub async fn running(pool: &Pool, platform: Option<&str>) -> Result<Vec<QueueEntry>, sqlx::Error> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM queue_entries
         WHERE status = 'running' AND ($1 IS NULL OR platform = $1)
         ORDER BY platform, priority DESC, seq"
    );
    let mut rows: Vec<QueueEntry> = on_pool!(pool, p => {
        sqlx::query_as(&sql).bind(platform).fetch_all(p).await?
    });
    let mut previous: Option<(String, i64)> = None;
    for row in &mut rows {
        row.position = match &previous {
            Some((p, n)) if *p == row.platform => n + 1,
            _ => 1,
        };
        previous = Some((row.platform.clone(), row.position));
    }
    Ok(rows)
}

/// What the scheduler can start on a platform now: up to `limit` runs
/// waiting for a VM and eligible at `now`, in queue order; and when the
/// next one that is not eligible yet will be.
pub async fn startable(
    pool: &Pool,
    platform: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<(Vec<QueueEntry>, Option<DateTime<Utc>>), sqlx::Error> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM queue_entries
         WHERE platform = $1 AND status = 'queued' AND stage = 'awaiting_vm'
           AND eligible_at <= $2
         ORDER BY priority DESC, seq
         LIMIT $3"
    );
    let next = "SELECT MIN(eligible_at) FROM queue_entries
                WHERE eligible_at > $2 AND platform = $1 AND stage = 'awaiting_vm'";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(on_pool!(pool, p => {
        let mut rows: Vec<QueueEntry> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?;
        for (row, position) in rows.iter_mut().zip(1..) {
            row.position = position;
        }
        let next = sqlx::query_scalar(next).bind(platform).bind(now).fetch_one(p).await?;
        (rows, next)
    }))
}

/// Which of `runs` are still in the queue (waiting or running).
pub async fn still_queued(pool: &Pool, runs: &[RunId]) -> Result<Vec<RunId>, sqlx::Error> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = on_pool!(pool, p => {
        let mut q = sqlx::QueryBuilder::new("SELECT run_id FROM queue_entries WHERE run_id IN (");
        let mut list = q.separated(", ");
        for run in runs {
            list.push_bind(run.to_string());
        }
        q.push(")");
        q.build_query_scalar().fetch_all(p).await?
    });
    ids.into_iter()
        .map(|id| RunId::try_from(id).map_err(|e| sqlx::Error::Decode(e.into())))
        .collect()
}

pub async fn platform_states(pool: &Pool) -> Result<Vec<PlatformState>, sqlx::Error> {
    let sql = "SELECT platform, paused, note, changed_at, changed_by FROM platform_states ORDER BY platform";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, PlatformState>(sql).fetch_all(p).await?))
}

/// One event as the audit view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: String,
    pub actor: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub subject: Option<String>,
    pub summary: String,
}

/// The entry's columns, with its data from the log (by the stream's key).
const AUDIT_COLUMNS: &str = "a.position, a.stream_id, a.stream_version, a.event_type, \
    a.schema_version, CAST(e.data AS TEXT) AS data, a.actor, a.correlation_id, a.causation_id, \
    a.recorded_at, a.subject, a.summary";
const AUDIT_FROM: &str = "FROM audit_log a \
    JOIN events e ON e.stream_id = a.stream_id AND e.stream_version = a.stream_version";

/// Every event of one run, in order.
pub async fn audit_trail(pool: &Pool, run_id: &str) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let stream = run_id
        .parse::<RunId>()
        .map(|id| id.stream())
        .unwrap_or_default();
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} {AUDIT_FROM} WHERE a.stream_id = $1 ORDER BY a.stream_version"
    );
    Ok(on_pool!(pool, p => {
        sqlx::query_as::<_, AuditEntry>(&sql).bind(&stream).fetch_all(p).await?
    }))
}

/// Filters of the audit log; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub stream: Option<String>,
    pub stream_prefix: Option<String>,
    pub actor: Option<String>,
    /// What an event is about, as `sp_domain::summary` names it
    /// (`test:<id>`, `sample:<sha256>`, `github:<login>`, `token:<name>`).
    pub subject: Option<String>,
    /// Events that one outside request led to.
    pub correlation_id: Option<String>,
    /// Any of these types; empty for all.
    pub types: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub from_position: Option<i64>,
    pub to_position: Option<i64>,
    /// Streams left out whatever else is asked (what the caller may not read).
    pub hidden_streams: Vec<String>,
}

/// A page of the audit log, newest first, before position `before`.
/// Returns the entries and whether more follow.
pub async fn audit_log(
    pool: &Pool,
    filter: &AuditFilter,
    first: usize,
    before: Option<i64>,
) -> Result<(Vec<AuditEntry>, bool), sqlx::Error> {
    let mut w = Conditions::default();
    if let Some(v) = &filter.stream {
        w.add("a.stream_id = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.stream_prefix {
        // Not LIKE, whose `_` and `%` a prefix may hold, nor a range,
        // which a collation other than C does not order by characters.
        let length = i64::try_from(v.chars().count()).unwrap_or(i64::MAX);
        w.add(
            "substr(a.stream_id, 1, CAST(? AS INTEGER)) = ?",
            [Param::Int(length), Param::Text(v.clone())],
        );
    }
    if let Some(v) = &filter.actor {
        w.add("a.actor = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.subject {
        w.add("a.subject = ?", [Param::Text(v.clone())]);
    }
    if let Some(v) = &filter.correlation_id {
        w.add("a.correlation_id = ?", [Param::Text(v.clone())]);
    }
    if !filter.types.is_empty() {
        let any = vec!["?"; filter.types.len()].join(", ");
        w.add(
            &format!("a.event_type IN ({any})"),
            filter.types.iter().cloned().map(Param::Text),
        );
    }
    if let Some(v) = filter.from {
        w.add("a.recorded_at >= ?", [Param::Time(v)]);
    }
    if let Some(v) = filter.to {
        w.add("a.recorded_at <= ?", [Param::Time(v)]);
    }
    if let Some(v) = filter.from_position {
        w.add("a.position >= ?", [Param::Int(v)]);
    }
    if let Some(v) = filter.to_position {
        w.add("a.position <= ?", [Param::Int(v)]);
    }
    if let Some(v) = before {
        w.add("a.position < ?", [Param::Int(v)]);
    }
    if !filter.hidden_streams.is_empty() {
        let none = vec!["?"; filter.hidden_streams.len()].join(", ");
        w.add(
            &format!("a.stream_id NOT IN ({none})"),
            filter.hidden_streams.iter().cloned().map(Param::Text),
        );
    }
    w.page(
        pool,
        &format!("SELECT {AUDIT_COLUMNS} {AUDIT_FROM}"),
        "a.position DESC",
        first,
    )
    .await
}

/// A VM the platform asked for.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct VmRow {
    pub vm_name: String,
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    pub platform: String,
    pub attempt: i32,
    /// requested, created, delete_requested, abandoned, deleted.
    pub status: String,
    pub idempotency_key: String,
    pub requested_at: DateTime<Utc>,
    pub created_at: Option<DateTime<Utc>>,
    pub delete_requested_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub delete_reason: Option<String>,
    pub abandoned_at: Option<DateTime<Utc>>,
    /// Why the platform stopped trying to delete it, and what to do.
    pub abandoned_reason: Option<String>,
}

const VM_COLUMNS: &str = "vm_name, run_id, platform, attempt, status, idempotency_key, requested_at, \
                          created_at, delete_requested_at, deleted_at, delete_reason, abandoned_at, \
                          abandoned_reason";

/// VMs in one status, oldest request first.
pub async fn vms_with_status(pool: &Pool, status: &str) -> Result<Vec<VmRow>, sqlx::Error> {
    let sql =
        format!("SELECT {VM_COLUMNS} FROM vms WHERE status = $1 ORDER BY requested_at, vm_name");
    Ok(on_pool!(pool, p => sqlx::query_as::<_, VmRow>(&sql).bind(status).fetch_all(p).await?))
}

/// VMs that may exist: asked for and not yet confirmed deleted.
pub async fn live_vms(pool: &Pool) -> Result<Vec<VmRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VM_COLUMNS} FROM vms WHERE status <> 'deleted' ORDER BY requested_at, vm_name"
    );
    Ok(on_pool!(pool, p => sqlx::query_as::<_, VmRow>(&sql).fetch_all(p).await?))
}

/// Runs whose deadline has passed at `now`, oldest first.
pub async fn due_deadlines(pool: &Pool, now: DateTime<Utc>) -> Result<Vec<RunId>, sqlx::Error> {
    let sql = "SELECT run_id FROM queue_entries WHERE deadline_at <= $1 ORDER BY deadline_at";
    let ids: Vec<String> =
        on_pool!(pool, p => sqlx::query_scalar(sql).bind(now).fetch_all(p).await?);
    ids.into_iter()
        .map(|id| RunId::try_from(id).map_err(|e| sqlx::Error::Decode(e.into())))
        .collect()
}

/// The earliest pending deadline, or when the earliest retry becomes eligible
/// for a VM: when the process managers must look again at the latest.
pub async fn next_due(pool: &Pool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let sql = "SELECT MIN(t) FROM (
                   SELECT MIN(deadline_at) AS t FROM queue_entries
                   UNION ALL
                   SELECT MIN(eligible_at) AS t FROM queue_entries WHERE stage = 'awaiting_vm'
               ) due";
    Ok(on_pool!(pool, p => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(sql).fetch_one(p).await?))
}

/// A run whose commit status GitHub has not been told yet.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StatusToReport {
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    pub repository: String,
    pub commit_sha: String,
    pub platform: String,
    pub desired_state: String,
    pub description: String,
    /// JSON list of [context, state] pairs told or given up on.
    pub told: String,
}

/// Runs with a status to tell, newest run per commit and platform only: an
/// older run never overwrites what its successor said. A successor that
/// tells GitHub nothing (a custom run of the same commit) does not count.
pub async fn statuses_to_report(pool: &Pool) -> Result<Vec<StatusToReport>, sqlx::Error> {
    let sql = "SELECT s.run_id, s.repository, s.commit_sha, s.platform, s.desired_state, s.description, s.told
               FROM github_statuses s
               WHERE NOT s.settled
                 AND NOT EXISTS (SELECT 1 FROM github_statuses n
                                 WHERE n.repository = s.repository AND n.commit_sha = s.commit_sha
                                   AND n.platform = s.platform AND n.seq > s.seq
                                   AND n.desired_state IS NOT NULL)
               ORDER BY s.seq";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, StatusToReport>(sql).fetch_all(p).await?))
}

/// One regression test's outcome in a run.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ResultRow {
    pub run_id: String,
    pub test_id: String,
    pub attempt: i32,
    /// Comma-separated.
    pub categories: String,
    pub passed: bool,
    pub exit_code: i32,
    pub runtime_ms: i64,
    pub timed_out: bool,
    /// JSON list of why it failed.
    pub mismatches: String,
    /// JSON list of the outputs as the runner reported them.
    pub outputs: String,
    /// The command line that reproduces the test by hand.
    pub reproduce: String,
}

pub async fn results(pool: &Pool, run_id: &str) -> Result<Vec<ResultRow>, sqlx::Error> {
    let sql =
        "SELECT run_id, test_id, attempt, categories, passed, exit_code, runtime_ms, timed_out,
                      mismatches, outputs, reproduce
               FROM sample_results WHERE run_id = $1 ORDER BY categories, test_id";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, ResultRow>(sql).bind(run_id).fetch_all(p).await?))
}

/// A completed run's comparison with the run it is measured against.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ComparisonRow {
    pub run_id: String,
    pub reference_run: Option<String>,
    pub reference_kind: Option<String>,
    pub reference_commit: Option<String>,
    /// Which reference, in words, or why there is none.
    pub reference_note: String,
    pub broken: i32,
    pub failing_differently: i32,
    pub fixed: i32,
    pub failing_identically: i32,
    pub new_tests: i32,
    pub no_reference: i32,
    pub unchanged_pass: i32,
    /// JSON: each test observed here, and in the reference.
    pub observations: String,
    pub reference_observations: Option<String>,
}

impl ComparisonRow {
    /// How many tests fell in each class, most urgent first, classes with
    /// none left out.
    pub fn counts(&self) -> Vec<(Class, u32)> {
        Class::ALL
            .into_iter()
            .map(|class| {
                let n = match class {
                    Class::Broken => self.broken,
                    Class::FailingDifferently => self.failing_differently,
                    Class::Fixed => self.fixed,
                    Class::FailingIdentically => self.failing_identically,
                    Class::New => self.new_tests,
                    Class::NoReference => self.no_reference,
                    Class::UnchangedPass => self.unchanged_pass,
                };
                (class, u32::try_from(n).unwrap_or(0))
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Every test with its class, most urgent first: the stored counts'
    /// classification again, from the stored observations.
    pub fn tests(&self) -> Result<Vec<(String, Class)>, serde_json::Error> {
        let here: Observations = serde_json::from_str(&self.observations)?;
        let reference: Option<Observations> = self
            .reference_observations
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        Ok(comparison::compare(&here, reference.as_ref()))
    }
}

const COMPARISON: &str = "SELECT c.run_id, c.reference_run, c.reference_kind, c.reference_commit,
        c.reference_note, c.broken, c.failing_differently, c.fixed, c.failing_identically,
        c.new_tests, c.no_reference, c.unchanged_pass, c.observations,
        r.observations AS reference_observations
    FROM run_comparisons c LEFT JOIN run_comparisons r ON r.run_id = c.reference_run";

/// The comparison of a completed run; `None` before it completes (or when
/// it ended without testing).
pub async fn comparison(pool: &Pool, run_id: &str) -> Result<Option<ComparisonRow>, sqlx::Error> {
    let sql = format!("{COMPARISON} WHERE c.run_id = $1");
    Ok(on_pool!(pool, p => sqlx::query_as::<_, ComparisonRow>(&sql)
        .bind(run_id)
        .fetch_optional(p)
        .await?))
}

/// An open pull request whose current head has no summary comment yet.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CommentToWrite {
    pub stream: String,
    /// Lower case, as the pull request's stream names it.
    pub repository: String,
    pub number: i64,
    pub head_seq: i64,
    pub head_sha: String,
    /// Comma-separated run ids.
    pub head_runs: String,
    pub comment_id: Option<i64>,
}

impl CommentToWrite {
    pub fn runs(&self) -> impl Iterator<Item = &str> {
        self.head_runs.split(',').filter(|r| !r.is_empty())
    }
}

/// The comment writer's work: open pull requests whose current head's
/// summary is neither written nor given up on.
pub async fn comments_to_write(pool: &Pool) -> Result<Vec<CommentToWrite>, sqlx::Error> {
    let sql = "SELECT stream, repository, number, head_seq, head_sha, head_runs, comment_id
               FROM pull_request_comments
               WHERE NOT closed
                 AND (written_seq IS NULL OR written_seq < head_seq)
                 AND (failed_seq IS NULL OR failed_seq < head_seq)
               ORDER BY stream";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, CommentToWrite>(sql).fetch_all(p).await?))
}

/// A run whose check run GitHub has not been told its state yet.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CheckToReport {
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    pub repository: String,
    pub commit_sha: String,
    pub platform: String,
    /// `check:queued`, `check:in_progress`, `check:success`, …
    pub desired_check: String,
    /// GitHub's id of the run's check run, once made.
    pub check_run_id: Option<i64>,
}

/// Runs with a check run state to tell that are not final or finished
/// since `since` (each run has its own check run, so an older run of a
/// commit is told too).
pub async fn checks_to_report(
    pool: &Pool,
    since: DateTime<Utc>,
) -> Result<Vec<CheckToReport>, sqlx::Error> {
    let sql =
        "SELECT s.run_id, s.repository, s.commit_sha, s.platform, s.desired_check, s.check_run_id
               FROM github_statuses s JOIN runs r ON r.run_id = s.run_id
               WHERE NOT s.check_settled AND s.desired_check IS NOT NULL
                 AND (r.finished_at IS NULL OR r.finished_at >= $1)
               ORDER BY s.seq";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, CheckToReport>(sql).bind(since).fetch_all(p).await?))
}

/// How many runs finished before `since` have a check run state never told:
/// what switching to check runs leaves out.
pub async fn checks_not_reported(pool: &Pool, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM github_statuses s JOIN runs r ON r.run_id = s.run_id
               WHERE NOT s.check_settled AND s.desired_check IS NOT NULL
                 AND r.finished_at < $1";
    Ok(on_pool!(pool, p => sqlx::query_scalar::<_, i64>(sql).bind(since).fetch_one(p).await?))
}

/// The runtimes (ms) of `tests` in their latest completed runs on
/// `platform`, newest first, at most `per_test` each.
pub async fn recent_runtimes(
    pool: &Pool,
    platform: &str,
    tests: &[&str],
    per_test: usize,
) -> Result<std::collections::HashMap<String, Vec<u64>>, sqlx::Error> {
    let mut history: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let per_test = i64::try_from(per_test).unwrap_or(i64::MAX);
    for chunk in tests.chunks(500) {
        let rows: Vec<(String, i64)> = on_pool!(pool, p => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT test_id, runtime_ms FROM (
                    SELECT s.test_id, s.runtime_ms,
                        ROW_NUMBER() OVER (PARTITION BY s.test_id ORDER BY r.seq DESC) AS n
                    FROM sample_results s JOIN runs r ON r.run_id = s.run_id
                    WHERE r.status = 'completed' AND r.platform = ",
            );
            q.push_bind(platform).push(" AND s.test_id IN (");
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            q.push(")) recent WHERE n <= ")
                .push_bind(per_test)
                .push(" ORDER BY test_id, n");
            q.build_query_as::<(String, i64)>().fetch_all(p).await?
        });
        for (test, ms) in rows {
            history
                .entry(test)
                .or_default()
                .push(u64::try_from(ms).unwrap_or(0));
        }
    }
    Ok(history)
}

/// A finished run as retention reads it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FinishedRunRow {
    pub run_id: String,
    pub repository: String,
    pub branch: Option<String>,
    pub pull_request: Option<i64>,
    pub platform: String,
    pub finished_at: DateTime<Utc>,
}

/// Every run that ended (completed, failed, superseded or cancelled).
pub async fn finished_runs(pool: &Pool) -> Result<Vec<FinishedRunRow>, sqlx::Error> {
    let sql = "SELECT run_id, repository, branch, pull_request, platform, finished_at FROM runs
               WHERE finished_at IS NOT NULL
                 AND status IN ('completed', 'failed', 'superseded', 'cancelled')";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, FinishedRunRow>(sql).fetch_all(p).await?))
}

/// The runs whose files of `kind` retention is done with.
pub async fn retention_done(pool: &Pool, kind: &str) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT run_id FROM retention_done WHERE kind = $1";
    Ok(on_pool!(pool, p => sqlx::query_scalar(sql).bind(kind).fetch_all(p).await?))
}

/// (run, key) rows of `kind` whose `column` is one of `values`, in
/// statements of at most 500 values.
async fn run_files_in(
    pool: &Pool,
    kind: &str,
    column: &str,
    values: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut found = Vec::new();
    for chunk in values.chunks(500) {
        let any: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT run_id, key FROM run_files WHERE kind = $1 AND {column} IN ({})",
            any.join(", ")
        );
        let rows: Vec<(String, String)> = on_pool!(pool, p => {
            let mut q = sqlx::query_as(&sql).bind(kind);
            for v in chunk {
                q = q.bind(v);
            }
            q.fetch_all(p).await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// (run, key) of every file of `kind` that `runs` hold.
pub async fn files_of_runs(
    pool: &Pool,
    kind: &str,
    runs: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    run_files_in(pool, kind, "run_id", runs).await
}

/// (run, key) of every run holding one of `keys`.
pub async fn holders_of(
    pool: &Pool,
    kind: &str,
    keys: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    run_files_in(pool, kind, "key", keys).await
}

/// What retention did with one run's files.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RetentionRow {
    pub kind: String,
    pub deleted: i64,
    pub kept: i64,
    pub deleted_at: DateTime<Utc>,
    pub policy: String,
}

pub async fn retention_of_run(pool: &Pool, run_id: &str) -> Result<Vec<RetentionRow>, sqlx::Error> {
    let sql = "SELECT kind, deleted, kept, deleted_at, policy FROM retention_done
               WHERE run_id = $1 ORDER BY kind";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, RetentionRow>(sql).bind(run_id).fetch_all(p).await?))
}

/// When and by which policy a file was deleted, if it was.
pub async fn deleted_file(
    pool: &Pool,
    kind: &str,
    key: &str,
) -> Result<Option<(DateTime<Utc>, String)>, sqlx::Error> {
    let sql = "SELECT deleted_at, policy FROM deleted_files WHERE kind = $1 AND key = $2";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).bind(kind).bind(key).fetch_optional(p).await?))
}
