//! Reports each run as a GitHub check run (with a GitHub App, instead of
//! commit statuses): `queued` while it waits, `in_progress` with "n of m
//! tests" once its runner reports, `completed` with a conclusion, a Markdown
//! summary of what the change did, annotations for the failing tests (at
//! most 50 per request, as GitHub allows) and the run page as `details_url`.
//!
//! Each state is sent once: it is recorded as `StatusReported` with the
//! state `check:<state>` and the check run's id, which later states update.
//! A run superseded after its check run was made completes it as cancelled.
//! Runs that finished over a day before are not reported (turning check
//! runs on does not replay the history); a notice counts them.
//! Before making a check run for a run, the commit's check runs of that name
//! are searched for the run's `external_id`, so one made by a process that
//! died before recording it is updated, not made again. Failures are
//! handled as the status reporter's.

use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{Value, json};
use sp_domain::{ErrorClass, RunCommand};
use sp_projections::queries::{self, CheckToReport};
use sp_projections::{RunRow, StatusesProjection};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::github::{Github, GithubError};
use crate::reporting::Reporting;
use crate::statuses::context;
use crate::summary::{self, PlatformRun};
use crate::wake::Wake;

const NAME: &str = "checks";

const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// GitHub takes at most this many annotations per request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// Runs finished longer ago than this are not reported when check runs are
/// turned on (or the platform was down that long): a notice says how many.
pub const REPORT_WINDOW: chrono::Duration = chrono::Duration::days(1);

pub async fn run(m: Managers, github: Github, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[StatusesProjection::NAME],
        m.config.tick,
    );
    let mut work = Reporting::new(FIRST_RETRY, MAX_RETRY);
    let since = m.clock.now() - REPORT_WINDOW;
    match queries::checks_not_reported(&m.db.pool, since).await {
        Ok(0) => {}
        Ok(n) => {
            m.notice(
                NAME,
                "check-runs-not-reported",
                format!(
                    "{n} runs finished before {since} have no check run on GitHub: check runs are made for runs that finish within {} hours of being reported",
                    REPORT_WINDOW.num_hours()
                ),
            )
            .await;
        }
        Err(error) => m
            .health
            .failing(NAME, format!("cannot count the runs left out: {error}")),
    }
    loop {
        report(&m, &github, &mut work).await;
        if !wake.wait(None, &stop).await {
            return;
        }
    }
}

/// What the check run says: its status and conclusion, title and summary.
struct Output {
    status: &'static str,
    conclusion: Option<&'static str>,
    title: String,
    summary: String,
    annotations: Vec<Value>,
}

/// The domain's words for a mismatch, as the results model stored it.
fn mismatch_words(m: &Value) -> String {
    match sp_domain::verdict::Mismatch::deserialize(m) {
        Ok(mismatch) => mismatch.to_string(),
        Err(_) => m.to_string(),
    }
}

async fn output(m: &Managers, row: &CheckToReport, run: &RunRow) -> Result<Output, String> {
    let state = row.desired_check.trim_start_matches("check:");
    let (passed, failed) = (run.passed.unwrap_or(0), run.failed.unwrap_or(0));
    let base = m.config.public_url.trim_end_matches('/');
    let page = format!("[The run on the dashboard]({base}/runs/{})", run.run_id);
    Ok(match state {
        "queued" => Output {
            status: "queued",
            conclusion: None,
            title: format!("Waiting ({})", run.stage.replace('_', " ")),
            summary: page,
            annotations: vec![],
        },
        "in_progress" => Output {
            status: "in_progress",
            conclusion: None,
            title: format!("{} of {} tests", run.samples_done, run.samples_total),
            summary: page,
            annotations: vec![],
        },
        "error" | "cancelled" | "superseded" => Output {
            status: "completed",
            conclusion: Some(if state == "error" {
                "failure"
            } else {
                "cancelled"
            }),
            title: match state {
                "error" => "Could not be tested",
                "cancelled" => "Cancelled",
                _ => "Superseded by a newer run",
            }
            .to_string(),
            summary: format!(
                "{}\n\n{page}",
                run.final_reason
                    .as_deref()
                    .unwrap_or("No reason was recorded.")
            ),
            annotations: vec![],
        },
        "success" | "failure" => {
            let id = run.run_id.to_string();
            let comparison = queries::comparison(&m.db.pool, &id)
                .await
                .map_err(|e| e.to_string())?;
            let tests = match &comparison {
                Some(c) => c.tests().map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            let class_of = |test: &str| {
                tests
                    .iter()
                    .find(|(t, _)| t == test)
                    .map(|(_, c)| c.label())
            };
            let results = queries::results(&m.db.pool, &id)
                .await
                .map_err(|e| e.to_string())?;
            let annotations = results
                .iter()
                .filter(|r| !r.passed)
                .map(|r| {
                    let mismatches: Vec<Value> =
                        serde_json::from_str(&r.mismatches).unwrap_or_default();
                    let why: Vec<String> = mismatches.iter().map(mismatch_words).collect();
                    let class = class_of(&r.test_id)
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default();
                    json!({
                        // A regression test has no line of source: the
                        // annotation names the test.
                        "path": format!("regression-tests/{}", r.test_id),
                        "start_line": 1,
                        "end_line": 1,
                        "annotation_level": "failure",
                        "title": r.test_id,
                        "message": format!("{}{class}; reproduce: {}", why.join(", "), r.reproduce),
                    })
                })
                .collect();
            let platform = PlatformRun {
                run: run.clone(),
                comparison,
                tests,
            };
            let broken = platform
                .tests
                .iter()
                .filter(|(_, c)| *c == sp_domain::comparison::Class::Broken)
                .count();
            Output {
                status: "completed",
                conclusion: Some(if state == "success" {
                    "success"
                } else {
                    "failure"
                }),
                title: if state == "success" {
                    format!("All {passed} regression tests passed")
                } else {
                    format!(
                        "{failed} of {} failed, {broken} broken here",
                        passed + failed
                    )
                },
                summary: format!(
                    "{}\n\n{page}",
                    summary::platform_section(&platform, base).trim()
                ),
                annotations,
            }
        }
        other => return Err(format!("no check run state {other:?}")),
    })
}

/// Make or update the run's check run: its id.
async fn send(
    m: &Managers,
    github: &Github,
    row: &CheckToReport,
    name: &str,
    details_url: &str,
    out: &Output,
) -> Result<u64, GithubError> {
    let mut chunks = out.annotations.chunks(ANNOTATIONS_PER_REQUEST);
    let first = chunks.next().unwrap_or(&[]);
    let mut body = json!({
        "name": name,
        "head_sha": row.commit_sha,
        "external_id": row.run_id.to_string(),
        "details_url": details_url,
        "status": out.status,
        "output": { "title": out.title, "summary": out.summary, "annotations": first },
    });
    if let Some(conclusion) = out.conclusion {
        body["conclusion"] = json!(conclusion);
        body["completed_at"] = json!(m.clock.now().to_rfc3339());
    }
    let known = match row.check_run_id.and_then(|id| u64::try_from(id).ok()) {
        Some(id) => Some(id),
        None => {
            github
                .find_check_run(
                    &row.repository,
                    &row.commit_sha,
                    name,
                    &row.run_id.to_string(),
                )
                .await?
        }
    };
    let id = match known {
        Some(id) => {
            github.update_check_run(&row.repository, id, &body).await?;
            id
        }
        None => github.create_check_run(&row.repository, &body).await?,
    };
    // GitHub appends the annotations of each update to the check run's.
    for chunk in chunks {
        let more = json!({
            "output": { "title": out.title, "summary": out.summary, "annotations": chunk },
        });
        github.update_check_run(&row.repository, id, &more).await?;
    }
    Ok(id)
}

async fn report(m: &Managers, github: &Github, work: &mut Reporting) {
    if work.rate_limited() {
        return;
    }
    let since = m.clock.now() - REPORT_WINDOW;
    let rows = match queries::checks_to_report(&m.db.pool, since).await {
        Ok(rows) => {
            m.health.ok(NAME);
            rows
        }
        Err(error) => {
            m.health.failing(
                NAME,
                format!("cannot read the check runs to report: {error}"),
            );
            return;
        }
    };
    work.keep_only(rows.iter().map(|r| &r.run_id));
    let now = Instant::now();
    for row in rows {
        if work.rate_limited() {
            return;
        }
        if work.retry.waiting(&row.run_id, now)
            || work.told.contains(&(row.run_id, row.desired_check.clone()))
        {
            continue;
        }
        let run = match queries::get_run(&m.db.pool, &row.run_id.to_string()).await {
            Ok(Some(run)) => run,
            Ok(None) => continue,
            Err(error) => {
                m.health
                    .failing(NAME, format!("cannot read run {}: {error}", row.run_id));
                continue;
            }
        };
        let name = context(&m.config.status_context, &row.platform);
        let details_url = format!(
            "{}/runs/{}",
            m.config.public_url.trim_end_matches('/'),
            row.run_id
        );
        let out = match output(m, &row, &run).await {
            Ok(out) => out,
            Err(error) => {
                work.retry.failed(&row.run_id);
                m.health.failing(
                    NAME,
                    format!("cannot say what run {} found: {error}", row.run_id),
                );
                continue;
            }
        };
        let command = match send(m, github, &row, &name, &details_url, &out).await {
            Ok(id) => {
                work.retry.succeeded(&row.run_id);
                work.told.insert((row.run_id, row.desired_check.clone()));
                RunCommand::RecordStatusReported {
                    context: name,
                    state: row.desired_check.clone(),
                    description: out.title,
                    check_run_id: Some(id),
                }
            }
            Err(failure) => {
                if let Some(wait) = failure.wait {
                    work.paused_until = Some(Instant::now() + wait);
                    tracing::warn!(?wait, "GitHub rate limit: check runs paused");
                }
                work.retry.failed(&row.run_id);
                let permanent = failure.error.class == ErrorClass::Permanent;
                if !permanent
                    && !work
                        .recorded
                        .insert((row.run_id, row.desired_check.clone()))
                {
                    continue;
                }
                RunCommand::RecordStatusReportFailed {
                    context: name,
                    state: row.desired_check.clone(),
                    class: failure.error.class,
                    message: failure.error.message,
                }
            }
        };
        let outcome = m.command(NAME, row.run_id, &command).await;
        m.log_outcome(NAME, row.run_id, "report the check run", outcome);
    }
}
