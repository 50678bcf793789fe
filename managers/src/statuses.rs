//! Tells GitHub each run's commit status: pending while it is queued or
//! running, then success or failure (the verdict) or error (it could not be
//! tested). `StatusReported` records what GitHub accepted, so nothing is sent
//! twice; a superseded run says nothing, and an older run never overwrites
//! its successor's status on the same commit (the read model's work list).
//!
//! A rate limit pauses every report until the time GitHub names; other
//! retryable failures back off per run; each failure is recorded once as
//! `StatusReportFailed`, and a permanent one ends the attempts for that state.

use std::time::Duration;

use tokio::time::Instant;

use sp_domain::{ErrorClass, RunCommand};
use sp_projections::{StatusesProjection, queries};
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::github::Github;
use crate::reporting::Reporting;
use crate::wake::Wake;

const NAME: &str = "statuses";

const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);

pub async fn run(m: Managers, github: Github, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[StatusesProjection::NAME],
        m.config.tick,
    );
    let mut work = Reporting::new(FIRST_RETRY, MAX_RETRY);
    loop {
        report(&m, &github, &mut work).await;
        if !wake.wait(None, &stop).await {
            return;
        }
    }
}

/// The status context of a platform, e.g. `CI - linux`.
pub fn context(template: &str, platform: &str) -> String {
    template.replace("{platform}", platform)
}

async fn report(m: &Managers, github: &Github, work: &mut Reporting) {
    let now = Instant::now();
    if work.rate_limited() {
        return;
    }
    let rows = match queries::statuses_to_report(&m.db.pool).await {
        Ok(rows) => {
            m.health.ok(NAME);
            rows
        }
        Err(error) => {
            m.health
                .failing(NAME, format!("cannot read the statuses to report: {error}"));
            return;
        }
    };
    // What is no longer to be reported is forgotten.
    work.keep_only(rows.iter().map(|r| &r.run_id));
    for row in rows {
        // GitHub asked for a pause (on this row or an earlier one): no more
        // requests, whatever was recorded for this row.
        if work.rate_limited() {
            return;
        }
        if work.retry.waiting(&row.run_id, now)
            || work.told.contains(&(row.run_id, row.desired_state.clone()))
        {
            continue;
        }
        let run = row.run_id;
        let context = context(&m.config.status_context, &row.platform);
        let target = format!(
            "{}/runs/{}",
            m.config.public_url.trim_end_matches('/'),
            row.run_id
        );
        let outcome = github
            .create_status(
                &row.repository,
                &row.commit_sha,
                &row.desired_state,
                &context,
                &row.description,
                &target,
            )
            .await;
        let command = match outcome {
            Ok(()) => {
                work.retry.succeeded(&row.run_id);
                work.told.insert((row.run_id, row.desired_state.clone()));
                RunCommand::RecordStatusReported {
                    context,
                    state: row.desired_state.clone(),
                    description: row.description.clone(),
                    check_run_id: None,
                }
            }
            Err(failure) => {
                if let Some(wait) = failure.wait {
                    work.paused_until = Some(Instant::now() + wait);
                    tracing::warn!(?wait, "GitHub rate limit: status reports paused");
                }
                work.retry.failed(&row.run_id);
                let key = (row.run_id, row.desired_state.clone());
                let permanent = failure.error.class == ErrorClass::Permanent;
                if !permanent && !work.recorded.insert(key) {
                    continue;
                }
                RunCommand::RecordStatusReportFailed {
                    context,
                    state: row.desired_state.clone(),
                    class: failure.error.class,
                    message: failure.error.message,
                }
            }
        };
        let outcome = m.command(NAME, run, &command).await;
        if outcome.is_err() {
            // Not on record: the next pass sends it again.
            work.told.remove(&(run, row.desired_state.clone()));
        }
        m.log_outcome(NAME, run, "report the commit status", outcome);
    }
}
