//! Read models built from the event log: the runs dashboard, the queue, the
//! audit view, the VMs the platform asked for, the commit statuses GitHub should
//! show, and each regression test's results.
//!
//! 1. Build one [`Projector`] for the [`Projection`]s (see [`standard`]) and
//!    `run` it: it follows the log from the models' checkpoints, folds each
//!    run once for all of them, applies each batch to every model and moves
//!    their checkpoints in one transaction, and retries an event it cannot
//!    apply (reporting its position) instead of skipping it.
//! 2. Read with [`queries`], and a regression test's [`history`] with what
//!    it says (where it broke, which commits are flaky).
//! 3. [`rebuild`] empties models and applies the whole log again, read once.
//!
//! Projections never call anything outside the database: they are
//! deterministic, so a rebuilt model equals the live one.
//!
//! The projections, by name (their checkpoint's, and `projections rebuild NAME`):
//! [`RunsProjection`] (`runs`), [`QueueProjection`] (`queue`: non-final runs per
//! platform with their deadlines; paused platforms), [`AuditProjection`]
//! (`audit`: every event of every stream, with a line a person can read),
//! [`VmsProjection`] (`vms`),
//! [`StatusesProjection`] (`statuses`, table `github_statuses`) and
//! [`ResultsProjection`] (`results`, table `sample_results`) and
//! [`ComparisonsProjection`] (`comparisons`, table `run_comparisons`: each
//! completed run's tests classified against an earlier run) and
//! [`CommentsProjection`] (`comments`, table `pull_request_comments`: each
//! pull request's current head and its summary comment) and
//! [`RetentionProjection`] (`retention`: the files each run holds, and what
//! retention deleted). Also public:
//! [`RunRow`] and [`RunStatus`] (a run as the dashboard shows it, derived from
//! the domain's state), and [`run_as_of`] (a run as it was at any position
//! of its stream); [`Change`] (published after commit, for live
//! subscribers); [`ProjectionStatus`] and [`ProjectionError`]. Read-model SQL
//! is written once for both backends with the event store's `Tx`, `on_tx!`
//! and `on_pool!`.

mod audit;
mod batch;
mod comments;
mod comparisons;
pub mod history;
pub mod queries;
mod queue;
mod results;
mod retention;
mod run_states;
mod run_view;
mod runner;
mod runs;
mod statuses;
mod vms;

use std::sync::Arc;

pub use audit::AuditProjection;
pub use comments::{CommentsProjection, pull_request_of};
pub use comparisons::{ComparisonsProjection, ReferenceKind};
pub use queue::QueueProjection;
pub use results::ResultsProjection;
pub use retention::RetentionProjection;
pub use run_states::Folded;
pub use run_states::{run_as_of, run_state};
pub use run_view::{RunOutcome, RunRow, RunStatus};
pub use runner::{Change, Projection, ProjectionError, ProjectionStatus, Projector, Step, rebuild};
pub use runs::RunsProjection;
pub use statuses::StatusesProjection;
pub use vms::VmsProjection;

/// The platform's read models.
pub fn standard() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(RunsProjection),
        Arc::new(QueueProjection),
        Arc::new(AuditProjection),
        Arc::new(VmsProjection),
        Arc::new(StatusesProjection),
        Arc::new(ResultsProjection),
        Arc::new(ComparisonsProjection),
        Arc::new(CommentsProjection),
        Arc::new(RetentionProjection),
    ]
}
