//! The GraphQL shapes of the read models.

use async_graphql::{Enum, ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};
use sp_projections::queries::{
    AuditEntry as AuditRow, AuditFilter, QueueEntry as QueueRow, RunFilter as Filter,
};
use sp_projections::{RunOutcome as Outcome, RunRow, RunStatus as Status};

// The read model's statuses as GraphQL spells them: `remote` derives the
// conversions both ways, so the two lists cannot drift apart.
/// Where a run is in its life.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RunStatus", remote = "sp_projections::RunStatus")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Superseded,
    Cancelled,
}

impl RunStatus {
    fn as_row_value(self) -> &'static str {
        Status::from(self).as_str()
    }
}

/// What a person asks of a run first, in one word.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RunOutcome", remote = "sp_projections::RunOutcome")]
pub enum RunOutcome {
    Queued,
    Running,
    /// Tested, and every test passed.
    Pass,
    /// Tested, and at least one test failed.
    Fail,
    /// Could not be tested (no build, no VM, a deadline passed).
    Error,
    Cancelled,
    Superseded,
}

/// A test run, as of its latest event (or as of a position, for `runAsOf`).
#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct Run {
    pub id: ID,
    pub repository: String,
    pub commit_sha: String,
    pub platform: String,
    pub status: RunStatus,
    /// pass, fail, error (could not be tested), cancelled, superseded, or
    /// queued / running while it is not final.
    pub outcome: RunOutcome,
    /// Where the run is: awaiting_artifact, awaiting_vm, provisioning_vm,
    /// booting, preparing, testing, finished.
    pub stage: String,
    pub attempt: i32,
    /// push, pull_request or manual.
    pub trigger: String,
    pub branch: Option<String>,
    pub pull_request: Option<i64>,
    pub requested_by: Option<String>,
    pub priority: i32,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub vm_name: Option<String>,
    /// The pending deadline of a run that is not final.
    pub deadline_at: Option<DateTime<Utc>>,
    pub deadline_kind: Option<String>,
    /// pass or fail, once completed.
    pub verdict: Option<String>,
    pub passed: Option<i32>,
    pub failed: Option<i32>,
    pub samples_done: i32,
    pub samples_total: i32,
    pub superseded_by: Option<ID>,
    /// Why it failed, was cancelled or superseded, in words.
    pub final_reason: Option<String>,
    /// The latest problem it recovered from (a retried attempt, a missing artifact).
    pub last_problem: Option<String>,
    /// Events folded into this view.
    pub version: i64,
    /// Global position of the latest of them.
    pub last_position: i64,
}

#[async_graphql::ComplexObject]
impl Run {
    /// What this run's change did against an earlier run: null until the
    /// run completes (and for runs that ended without being tested).
    async fn comparison(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Option<super::comparison::Comparison>> {
        super::comparison::of(ctx, &self.id).await
    }

    /// How long it has left (while queued or running), from its remaining
    /// tests' recent runtimes on its platform; null when none ever ran there.
    async fn estimate(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Option<super::estimate::RunEstimate>> {
        super::estimate::of(ctx, self).await
    }

    /// What retention deleted of this run's files, per kind: empty while it
    /// keeps them all.
    async fn retention(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<RetentionRecord>> {
        let rows =
            sp_projections::queries::retention_of_run(&super::services(ctx)?.db.pool, &self.id)
                .await
                .map_err(super::internal)?;
        Ok(rows
            .into_iter()
            .map(|r| RetentionRecord {
                kind: match r.kind.as_str() {
                    "artifact" => FileKind::Artifact,
                    "output" => FileKind::Output,
                    _ => FileKind::Log,
                },
                deleted: r.deleted,
                kept: r.kept,
                deleted_at: r.deleted_at,
                policy: r.policy,
            })
            .collect())
    }
}

/// The files retention deletes.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
pub enum FileKind {
    /// The build's program the run tested.
    Artifact,
    /// What its tests produced.
    Output,
    /// What its runner uploaded.
    Log,
}

/// What retention did with one kind of a run's files.
#[derive(Debug, SimpleObject)]
pub struct RetentionRecord {
    pub kind: FileKind,
    pub deleted: i64,
    /// Files kept because another run still holds them or the catalogue
    /// approves them (they go with the last run holding them).
    pub kept: i64,
    pub deleted_at: DateTime<Utc>,
    /// The rule that let them go, in words.
    pub policy: String,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        let status = Status::parse(&r.status).unwrap_or(Status::Failed);
        Run {
            id: ID(r.run_id.to_string()),
            outcome: r.outcome().into(),
            status: status.into(),
            repository: r.repository,
            commit_sha: r.commit_sha,
            platform: r.platform,
            stage: r.stage,
            attempt: r.attempt,
            trigger: r.trigger_kind,
            branch: r.branch,
            pull_request: r.pull_request,
            requested_by: r.requested_by,
            priority: r.priority,
            queued_at: r.queued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            vm_name: r.vm_name,
            deadline_at: r.deadline_at,
            deadline_kind: r.deadline_kind,
            verdict: r.verdict,
            passed: r.passed,
            failed: r.failed,
            samples_done: r.samples_done,
            samples_total: r.samples_total,
            superseded_by: r.superseded_by.map(ID),
            final_reason: r.final_reason,
            last_problem: r.last_problem,
            version: r.version,
            last_position: r.last_position,
        }
    }
}

/// Filters for `runs`; all optional, combined with AND.
#[derive(Debug, Default, InputObject)]
pub struct RunFilter {
    pub platform: Option<String>,
    pub status: Option<RunStatus>,
    /// pass, fail, error, …: a finer status.
    pub outcome: Option<RunOutcome>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub pull_request: Option<i64>,
    /// A prefix of the commit SHA (hexadecimal).
    pub commit_prefix: Option<String>,
}

impl RunFilter {
    pub fn to_query(&self) -> Result<Filter, String> {
        if let Some(prefix) = &self.commit_prefix
            && (prefix.is_empty()
                || prefix.len() > 40
                || !prefix.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!(
                "commitPrefix {prefix:?} is not a hexadecimal prefix of a SHA"
            ));
        }
        let (status, verdict) = match self.outcome {
            None => (self.status.map(Status::from), None),
            Some(outcome) => {
                let (status, verdict) = Outcome::from(outcome).row_match();
                if let Some(asked) = self.status.map(Status::from)
                    && asked != status
                {
                    return Err(format!(
                        "no run is both {} and {}: that outcome is a {} run",
                        asked.as_str(),
                        format!("{outcome:?}").to_lowercase(),
                        status.as_str()
                    ));
                }
                (Some(status), verdict)
            }
        };
        Ok(Filter {
            platform: self.platform.clone(),
            status: status.map(|s| s.as_str().to_string()),
            verdict: verdict.map(str::to_string),
            repository: self.repository.clone(),
            branch: self.branch.clone(),
            pull_request: self.pull_request,
            commit_prefix: self.commit_prefix.clone(),
        })
    }

    /// Whether a run matches, for subscriptions.
    pub fn matches(&self, run: &RunRow) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.platform, &run.platform)
            && self.status.is_none_or(|s| s.as_row_value() == run.status)
            && self.outcome.is_none_or(|o| {
                let want = Outcome::from(o);
                Status::parse(&run.status)
                    .is_some_and(|s| Outcome::of(s, run.verdict.as_deref()) == want)
            })
            && eq(&self.repository, &run.repository)
            && self
                .branch
                .as_deref()
                .is_none_or(|b| run.branch.as_deref() == Some(b))
            && self
                .pull_request
                .is_none_or(|n| run.pull_request == Some(n))
            && self
                .commit_prefix
                .as_deref()
                .is_none_or(|p| run.commit_sha.starts_with(&p.to_ascii_lowercase()))
    }
}

/// A VM the platform could not delete and stopped trying to: a person must
/// delete it (the platform notices when it is gone).
#[derive(Debug, SimpleObject)]
pub struct AbandonedVm {
    pub vm_name: String,
    pub run_id: ID,
    pub platform: String,
    pub attempt: i32,
    pub since: Option<DateTime<Utc>>,
    /// The last error, and what to do.
    pub reason: String,
}

impl From<sp_projections::queries::VmRow> for AbandonedVm {
    fn from(vm: sp_projections::queries::VmRow) -> Self {
        AbandonedVm {
            vm_name: vm.vm_name,
            run_id: ID(vm.run_id.to_string()),
            platform: vm.platform,
            attempt: vm.attempt,
            since: vm.abandoned_at,
            reason: vm.abandoned_reason.unwrap_or_default(),
        }
    }
}

/// One run waiting or running on a platform.
#[derive(Debug, SimpleObject)]
pub struct QueueEntry {
    pub run_id: ID,
    /// Order among the platform's waiting (or running) runs, from 1.
    pub position: i64,
    pub status: RunStatus,
    pub stage: String,
    pub attempt: i32,
    pub priority: i32,
    pub queued_at: DateTime<Utc>,
    /// Since when it is in its current status.
    pub waiting_since: DateTime<Utc>,
    /// After a failed attempt, no VM before this time.
    pub eligible_at: Option<DateTime<Utc>>,
    pub deadline_at: DateTime<Utc>,
    pub deadline_kind: String,
    pub vm_name: Option<String>,
}

impl From<QueueRow> for QueueEntry {
    fn from(q: QueueRow) -> Self {
        QueueEntry {
            run_id: ID(q.run_id.to_string()),
            position: q.position,
            status: Status::parse(&q.status).unwrap_or(Status::Queued).into(),
            stage: q.stage,
            attempt: q.attempt,
            priority: q.priority,
            queued_at: q.queued_at,
            waiting_since: q.waiting_since,
            eligible_at: q.eligible_at,
            deadline_at: q.deadline_at,
            deadline_kind: q.deadline_kind,
            vm_name: q.vm_name,
        }
    }
}

/// A platform's queue and maintenance state. Its waiting runs are read a
/// page at a time (`waiting`).
#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct PlatformQueue {
    pub platform: String,
    pub paused: bool,
    pub maintenance_note: Option<String>,
    /// How many runs wait (for their build or for a VM).
    pub waiting_count: i64,
    pub running: Vec<QueueEntry>,
    /// How many VMs the platform may have at once.
    pub capacity: i32,
    /// When the longest-waiting run started waiting.
    pub oldest_waiting_since: Option<DateTime<Utc>>,
}

#[derive(Debug, SimpleObject)]
pub struct AuditMetadata {
    pub actor: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
}

/// One event of the log, as an auditor reads it.
#[derive(Debug, SimpleObject)]
pub struct AuditEntry {
    pub position: i64,
    /// The stream it belongs to: `run-<id>`, `catalogue`, `pr-<repo>#<n>`,
    /// `delivery-<id>`, `blocked-users`, `platform-<name>`, `notices`, `access`.
    pub stream: String,
    pub stream_version: i64,
    /// The event's name, e.g. `Queued`.
    #[graphql(name = "type")]
    pub event_type: String,
    pub schema_version: i32,
    /// What happened, in one line.
    pub summary: String,
    /// What it is about within its stream: `test:<id>`, `sample:<sha256>`,
    /// `github:<login>`, `token:<name>`; null when the stream says it.
    pub subject: Option<String>,
    pub data: Json<serde_json::Value>,
    pub metadata: AuditMetadata,
    pub recorded_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        AuditEntry {
            position: a.position,
            stream: a.stream_id,
            stream_version: a.stream_version,
            event_type: a.event_type,
            schema_version: a.schema_version,
            summary: a.summary,
            subject: a.subject,
            data: Json(serde_json::from_str(&a.data).unwrap_or(serde_json::Value::String(a.data))),
            metadata: AuditMetadata {
                actor: a.actor,
                correlation_id: a.correlation_id,
                causation_id: a.causation_id,
            },
            recorded_at: a.recorded_at,
        }
    }
}

/// Filters for `auditLog`; all optional, combined with AND.
#[derive(Debug, Default, InputObject)]
pub struct AuditLogFilter {
    /// One stream, whole: `catalogue`, `run-<id>`, …
    pub stream: Option<String>,
    /// Streams whose name starts with this: `run-`, `pr-owner/repo#`, …
    pub stream_prefix: Option<String>,
    /// Who: `github:<login>`, `user:<name>`, `system:<component>`, …
    pub actor: Option<String>,
    /// What it is about: `test:<id>`, `sample:<sha256>`, `github:<login>`,
    /// `token:<name>`.
    pub subject: Option<String>,
    /// Every event one outside request (a delivery, a mutation) led to.
    pub correlation_id: Option<String>,
    /// Any of these event types.
    #[graphql(default)]
    pub types: Vec<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded at or before.
    pub to: Option<DateTime<Utc>>,
    pub from_position: Option<i64>,
    pub to_position: Option<i64>,
}

impl AuditLogFilter {
    pub fn into_query(self) -> Result<AuditFilter, String> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(format!("from {from} is after to {to}"));
        }
        if let (Some(from), Some(to)) = (self.from_position, self.to_position)
            && from > to
        {
            return Err(format!("fromPosition {from} is after toPosition {to}"));
        }
        if self.types.len() > 50 {
            return Err("types: at most 50".into());
        }
        let empty = |name: &str, value: &Option<String>| match value {
            Some(v) if v.is_empty() => Err(format!("{name} is empty: leave it out instead")),
            _ => Ok(()),
        };
        empty("stream", &self.stream)?;
        empty("streamPrefix", &self.stream_prefix)?;
        empty("actor", &self.actor)?;
        empty("subject", &self.subject)?;
        empty("correlationId", &self.correlation_id)?;
        let texts = [
            &self.stream,
            &self.stream_prefix,
            &self.actor,
            &self.subject,
            &self.correlation_id,
        ];
        if texts
            .into_iter()
            .flatten()
            .chain(&self.types)
            .any(|t| t.contains('\0'))
        {
            return Err("a filter cannot hold a NUL character".into());
        }
        Ok(AuditFilter {
            stream: self.stream,
            stream_prefix: self.stream_prefix,
            actor: self.actor,
            subject: self.subject,
            correlation_id: self.correlation_id,
            types: self.types,
            from: self.from,
            to: self.to,
            from_position: self.from_position,
            to_position: self.to_position,
            hidden_streams: vec![],
        })
    }
}

#[derive(Debug, SimpleObject)]
pub struct BlockedUser {
    pub login: String,
    pub reason: String,
}

/// One regression test's outcome in a run's current attempt.
#[derive(Debug, SimpleObject)]
pub struct TestOutcome {
    pub test_id: String,
    pub attempt: i32,
    pub categories: Vec<String>,
    pub passed: bool,
    pub exit_code: i32,
    pub runtime_ms: i64,
    pub timed_out: bool,
    /// Why it failed: exit code, outputs that differ or are missing.
    pub mismatches: Json<serde_json::Value>,
    /// Each output: `equal`, its sha256, or `missing`.
    pub outputs: Json<serde_json::Value>,
    /// The name of the runner file with the test's standard error, among
    /// this attempt's `runFiles` when the test wrote any.
    pub stderr_file: String,
    /// The command line that reproduces the test by hand, from a directory
    /// holding your build of the commit as `<repository name>` and the
    /// sample under its file name; outputs go to `out/` (empty for results
    /// recorded before it existed, until `projections rebuild results`).
    pub reproduce: String,
}

impl From<sp_projections::queries::ResultRow> for TestOutcome {
    fn from(r: sp_projections::queries::ResultRow) -> Self {
        let json = |s: &str| Json(serde_json::from_str(s).unwrap_or(serde_json::Value::Null));
        TestOutcome {
            categories: r
                .categories
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
            mismatches: json(&r.mismatches),
            outputs: json(&r.outputs),
            stderr_file: sp_domain::protocol::stderr_file_name(&r.test_id),
            reproduce: r.reproduce,
            test_id: r.test_id,
            attempt: r.attempt,
            passed: r.passed,
            exit_code: r.exit_code,
            runtime_ms: r.runtime_ms,
            timed_out: r.timed_out,
        }
    }
}
