//! Process managers: the parts of the platform that drive the outside world.
//!
//! Each is a loop that reads its work from durable read models, acts, and
//! records the outcome as events through the write side:
//!
//! - [`timer`]: fires every run's deadline when it passes (`TimedOut`, then
//!   compensation and a retry or a failure, decided by the domain);
//! - [`scheduler`]: gives waiting runs a VM slot (`VmRequested`), per platform
//!   capacity, priority then queue order, never on a paused platform;
//! - [`vm_manager`]: creates requested VMs and deletes those asked to go, with
//!   timeouts, idempotency keys and classified retries ([`external`]);
//! - [`artifacts`]: fetches each queued run's build artifact ([`ArtifactSource`]);
//! - [`reconcile`]: deletes VMs nobody wants and notices VMs that vanished;
//! - [`retention`]: deletes the files of finished runs the policy lets go
//!   (`RunFilesDeleted`, or `FileDeleteFailed` and a retry at its next sweep);
//! - [`statuses`]: tells GitHub each run's commit status once per state
//!   (`StatusReported`, or `StatusReportFailed`) through [`github`] (octocrab:
//!   statuses, comments and Actions artifacts); it runs only with a GitHub token;
//! - [`checks`]: with a GitHub App, check runs instead of commit statuses
//!   (the same work list and events; annotations for failing tests);
//! - [`comments`]: writes one summary comment per pull request ([`summary`]),
//!   edited as its heads are tested (`CommentWritten`, or `CommentFailed`).
//!
//! They wake when a read model they follow changes, when their next due time
//! comes, and on a slow tick. After a crash they start from the read models
//! again: an intent recorded before the crash (a `VmRequested`) is carried out
//! with the same idempotency key, so it never makes a second VM. One instance
//! leads at a time (`sp_eventstore::lease`).
//!
//! [`saga`] names every outside effect as a step: the intent recorded before
//! it, why repeating it repeats nothing outside, the events of its outcome,
//! and the step that undoes it (or the person who must, [`saga::Undo`]).
//!
//! Also public: [`provider`] ([`VmProvider`], [`CreateVm`], [`VmInfo`],
//! [`VmState`]) and [`local`] (VMs as local process groups); [`external`]'s
//! [`CallPolicy`] and [`CallError`]; [`credentials`] ([`RunnerKeys`], one runner
//! credential per attempt); [`health`] ([`Health`], for `/readyz`); and
//! [`ManagersConfig`], [`Lead`] and [`Managers`], whose [`Managers::spawn_all`]
//! starts them all.

pub mod artifacts;
mod backoff;
pub mod checks;
pub mod comments;
pub mod credentials;
pub mod external;
pub mod github;
pub mod health;
pub mod local;
pub mod metrics;
pub mod provider;
pub mod reconcile;
mod reporting;
pub mod retention;
pub mod saga;
pub mod scheduler;
pub mod statuses;
pub mod summary;
pub mod timer;
pub mod vm_manager;
mod wake;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sp_commands::{Clock, CommandError, Envelope, Handler};
use sp_domain::notices::{Notices, RecordNotice};
use sp_domain::{Platform, Policy, Rejection, RunCommand, RunId, RunState};
use sp_eventstore::Database;
use sp_projections::Change;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use self::metrics::Metrics;
pub use artifacts::ArtifactSource;
pub use credentials::RunnerKeys;
pub use external::{CallError, CallPolicy};
pub use health::Health;
pub use provider::{CreateVm, VmInfo, VmProvider, VmState};

/// Settings of the process managers.
#[derive(Debug, Clone)]
pub struct ManagersConfig {
    pub platforms: Vec<Platform>,
    /// Most VMs at once per platform (default for those not named).
    pub capacity: BTreeMap<String, usize>,
    pub default_capacity: usize,
    pub policy: Policy,
    /// The platform's address as runners reach it.
    pub public_url: String,
    pub vm_create: CallPolicy,
    pub vm_delete: CallPolicy,
    pub reconcile_every: Duration,
    pub artifacts: ArtifactSource,
    /// GitHub, for commit statuses and Actions artifacts; none without a token.
    pub github: Option<github::Github>,
    /// Status context per platform, e.g. `CI - {platform}`.
    pub status_context: String,
    /// Write one summary comment per pull request (with `github`).
    pub pull_request_comments: bool,
    /// Report check runs (a GitHub App) instead of commit statuses.
    pub check_runs: bool,
    /// How often a manager looks at its work with nothing telling it to: a
    /// fallback for a missed wake-up ([`TICK`] in production; the fault
    /// harness, in virtual time, takes longer ones).
    pub tick: Duration,
    /// Pauses between failed deletions of one VM: the first, and the most
    /// it grows to ([`VM_DELETE_PAUSES`] in production).
    pub vm_delete_pauses: (Duration, Duration),
    /// Where outside calls, deadlines fired and retries are counted.
    pub metrics: Metrics,
    /// Which files of finished runs to delete, and how often to look; none
    /// keeps every file for ever.
    pub retention: Option<retention::Retention>,
}

/// Pauses between failed deletions of one VM, first and longest.
pub const VM_DELETE_PAUSES: (Duration, Duration) =
    (Duration::from_secs(5), Duration::from_secs(300));

impl ManagersConfig {
    pub fn capacity_of(&self, platform: &str) -> usize {
        self.capacity
            .get(platform)
            .copied()
            .unwrap_or(self.default_capacity)
    }
}

/// What every manager uses.
#[derive(Debug, Clone)]
pub struct Managers {
    pub db: Database,
    /// The log, fenced by the lease: what managers record outside runs.
    pub store: Arc<dyn sp_eventstore::EventStore>,
    pub runs: Handler<RunState>,
    /// What went wrong outside any run (stream `notices`).
    notices: Handler<Notices>,
    pub provider: Arc<dyn VmProvider>,
    pub config: Arc<ManagersConfig>,
    pub changes: broadcast::Sender<Change>,
    pub clock: Arc<dyn Clock>,
    /// The lease's fencing token, part of every actor name; every append is
    /// fenced by it (see `runs`).
    pub token: i64,
    pub health: Health,
    pub keys: RunnerKeys,
}

/// What a leadership brings: its fence, where to report problems, and
/// the key runner credentials are derived from.
#[derive(Debug, Clone)]
pub struct Lead {
    pub fence: sp_eventstore::Fence,
    pub health: Health,
    pub keys: RunnerKeys,
}

/// Slow tick: what a lost wake-up can cost at most.
pub const TICK: Duration = Duration::from_secs(1);

impl Managers {
    /// Log what a manager's command did. A rejection is an expected race;
    /// any other failure is also a problem in `/readyz` until the manager's
    /// next good pass. Returns whether the command failed that way.
    pub(crate) fn log_outcome(
        &self,
        manager: &str,
        run: RunId,
        what: &str,
        outcome: Result<Vec<sp_domain::RunEvent>, CommandError<Rejection>>,
    ) -> bool {
        match outcome {
            Ok(events) if !events.is_empty() => {
                let names: Vec<&str> = events.iter().map(sp_domain::RunEvent::type_name).collect();
                tracing::info!(manager, run = %run, what, events = ?names, "recorded");
                false
            }
            Ok(_) => false,
            Err(CommandError::Rejected(reason)) => {
                tracing::debug!(manager, run = %run, what, %reason, "nothing to do");
                false
            }
            Err(error) => {
                self.health
                    .failing(manager, format!("cannot {what} for run {run}: {error}"));
                true
            }
        }
    }

    pub fn new(
        db: Database,
        provider: Arc<dyn VmProvider>,
        config: ManagersConfig,
        changes: broadcast::Sender<Change>,
        clock: Arc<dyn Clock>,
        lead: Lead,
    ) -> Self {
        // Every append goes through the fence: once another instance has taken
        // the lease, this one's decisions are refused by the store.
        let store: Arc<dyn sp_eventstore::EventStore> = Arc::new(sp_eventstore::FencedStore::new(
            db.store.clone(),
            lead.fence.clone(),
        ));
        Managers {
            runs: Handler::new(store.clone(), config.policy.clone(), clock.clone())
                .keeping_folds(1024),
            notices: Handler::new(store.clone(), config.policy.clone(), clock.clone()),
            store,
            db,
            provider,
            config: Arc::new(config),
            changes,
            clock,
            token: lead.fence.token,
            health: lead.health,
            keys: lead.keys,
        }
    }

    /// Keep runs folded together with `runs` (the runner endpoint's handler
    /// in the same process), so what one recorded the other need not read.
    pub fn sharing_folds_with(mut self, runs: &Handler<RunState>) -> Self {
        self.runs = self.runs.sharing_folds_with(runs);
        self
    }

    /// Run every manager until `stop`.
    pub fn spawn_all(&self, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![
            tokio::spawn(timer::run(self.clone(), stop.clone())),
            tokio::spawn(scheduler::run(self.clone(), stop.clone())),
            tokio::spawn(vm_manager::run(self.clone(), stop.clone())),
            tokio::spawn(artifacts::run(self.clone(), stop.clone())),
            tokio::spawn(reconcile::run(self.clone(), stop.clone())),
            tokio::spawn(retention::run(self.clone(), stop.clone())),
        ];
        match &self.config.github {
            Some(github) => {
                let reporter = if self.config.check_runs {
                    tokio::spawn(checks::run(self.clone(), github.clone(), stop.clone()))
                } else {
                    tokio::spawn(statuses::run(self.clone(), github.clone(), stop.clone()))
                };
                tasks.push(reporter);
                if self.config.pull_request_comments {
                    tasks.push(tokio::spawn(comments::run(
                        self.clone(),
                        github.clone(),
                        stop.clone(),
                    )));
                }
            }
            None => tracing::warn!(
                "no GitHub token or App configured: commit statuses and pull request comments are not written"
            ),
        }
        tasks
    }

    pub fn actor(&self, manager: &str) -> String {
        format!("system:{manager}#{}", self.token)
    }

    /// Execute a command on a run as `manager`. Rejections are the domain
    /// saying "not (any more)": returned for the caller to judge.
    pub async fn command(
        &self,
        manager: &str,
        run: RunId,
        command: &RunCommand,
    ) -> Result<Vec<sp_domain::RunEvent>, CommandError<Rejection>> {
        let envelope = Envelope::new(self.actor(manager)).correlated(run.0);
        let events = self
            .runs
            .execute(&run.stream(), command, &envelope)
            .await?
            .events;
        self.config.metrics.recorded(&events);
        Ok(events)
    }

    /// Record something that went wrong outside any run.
    pub async fn notice(&self, manager: &str, kind: &str, message: String) {
        tracing::warn!(manager, kind, %message, "notice");
        let command = RecordNotice {
            kind: kind.to_string(),
            message,
        };
        let envelope = Envelope::new(self.actor(manager));
        if let Err(error) = self
            .notices
            .record_unread(sp_domain::notices::STREAM, &command, &envelope)
            .await
        {
            tracing::error!(%error, "cannot record a notice");
        }
    }
}
