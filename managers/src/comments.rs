//! Writes one summary comment per pull request: when every run of its
//! current head has finished, the comment says per platform what the change
//! did (see [`crate::summary`]), and each later head edits the same comment.
//!
//! The comment's id is recorded (`CommentWritten` on the pull request's
//! stream). Before posting a first one, the pull request's comments are
//! searched for the hidden marker, so a comment posted by a process that
//! died before recording it is found and edited, never posted twice; the
//! lease makes this manager run in one replica at a time. Heads whose runs
//! were all superseded or cancelled say nothing; a closed pull request is
//! left alone.
//!
//! A head whose runs all finished over a day before is not commented on (a
//! notice says so): turning comments on does not replay the history.
//!
//! Failures are handled as the status reporter's: a rate limit pauses every
//! write until the time GitHub names, other retryable failures back off per
//! pull request, each is recorded once as `CommentFailed`, and a permanent
//! one ends the attempts for that head.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sp_commands::{CommandError, Envelope, Handler};
use sp_domain::pull_request::{PullRequestCommand, PullRequestState};
use sp_domain::{ErrorClass, RunId};
use sp_projections::queries::{self, CommentToWrite};
use sp_projections::{
    CommentsProjection, ComparisonsProjection, RunOutcome, RunStatus, RunsProjection,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::backoff::Backoff;
use crate::github::{Github, GithubError};
use crate::summary::{self, MARKER, PlatformRun};
use crate::wake::Wake;

const NAME: &str = "comments";

const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Pages of 100 comments searched for the marker: a pull request with more
/// than 3,000 comments gets a second summary rather than a wait.
const MAX_PAGES: u32 = 30;

#[derive(Debug)]
struct Work {
    paused_until: Option<Instant>,
    retry: Backoff<String>,
    /// (pull request, head) failures already recorded by this process.
    recorded: HashSet<(String, i64)>,
    /// What this process wrote (pull request: head, body's SHA-256), until
    /// the read model shows it: a wake-up in between must not write again.
    written: HashMap<String, (i64, String)>,
    /// Pull requests whose head was too old to comment on, noticed once.
    stale: HashSet<String>,
}

pub async fn run(m: Managers, github: Github, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[
            CommentsProjection::NAME,
            RunsProjection::NAME,
            ComparisonsProjection::NAME,
        ],
        m.config.tick,
    );
    // The managers' fenced store: a deposed leader records nothing.
    let pull_requests = Handler::<PullRequestState>::new(
        m.runs.store().clone(),
        m.config.policy.clone(),
        m.clock.clone(),
    );
    let mut work = Work {
        paused_until: None,
        retry: Backoff::new(FIRST_RETRY, MAX_RETRY),
        recorded: HashSet::new(),
        written: HashMap::new(),
        stale: HashSet::new(),
    };
    loop {
        write_all(&m, &github, &pull_requests, &mut work).await;
        if !wake.wait(None, &stop).await {
            return;
        }
    }
}

/// The head's runs, each with its comparison; `None` while one has not
/// finished, or when none has anything to say (all superseded or cancelled).
async fn head_runs(m: &Managers, row: &CommentToWrite) -> Result<Option<Vec<PlatformRun>>, String> {
    let mut runs = Vec::new();
    for id in row.runs() {
        let Some(run) = queries::get_run(&m.db.pool, id)
            .await
            .map_err(|e| e.to_string())?
        else {
            // Queued in the same transaction as the head: not projected yet.
            return Ok(None);
        };
        let status = RunStatus::parse(&run.status).unwrap_or(RunStatus::Failed);
        if !status.is_final() {
            return Ok(None);
        }
        let comparison = queries::comparison(&m.db.pool, id)
            .await
            .map_err(|e| e.to_string())?;
        let tests = match &comparison {
            Some(c) => c.tests().map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        runs.push(PlatformRun {
            run,
            comparison,
            tests,
        });
    }
    let speaks = runs.iter().any(|r| {
        !matches!(
            r.run.outcome(),
            RunOutcome::Superseded | RunOutcome::Cancelled
        )
    });
    runs.sort_by(|a, b| a.run.platform.cmp(&b.run.platform));
    Ok(speaks.then_some(runs))
}

/// Edit the known comment, or the one carrying the marker, or post one:
/// GitHub's id and whether it was posted now.
async fn write(
    github: &Github,
    repository: &str,
    number: u64,
    known: Option<u64>,
    body: &str,
) -> Result<(u64, bool), GithubError> {
    if let Some(id) = known {
        match github.update_comment(repository, id, body).await {
            Ok(comment) => return Ok((comment.id, false)),
            // Deleted by someone: look for another, or post anew.
            Err(e) if e.not_found() => {}
            Err(e) => return Err(e),
        }
    }
    for page in 1..=MAX_PAGES {
        let comments = github.comments(repository, number, page).await?;
        let mine = comments
            .iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.starts_with(MARKER)));
        if let Some(found) = mine {
            let comment = github.update_comment(repository, found.id, body).await?;
            return Ok((comment.id, false));
        }
        if comments.len() < 100 {
            break;
        }
    }
    let comment = github.create_comment(repository, number, body).await?;
    Ok((comment.id, true))
}

async fn write_all(
    m: &Managers,
    github: &Github,
    pull_requests: &Handler<PullRequestState>,
    work: &mut Work,
) {
    if work.paused_until.is_some_and(|t| t > Instant::now()) {
        return;
    }
    let rows = match queries::comments_to_write(&m.db.pool).await {
        Ok(rows) => rows,
        Err(error) => {
            m.health.failing(
                NAME,
                format!("cannot read the pull requests to comment on: {error}"),
            );
            return;
        }
    };
    work.retry.keep_only(rows.iter().map(|r| &r.stream));
    work.recorded
        .retain(|(stream, _)| rows.iter().any(|r| &r.stream == stream));
    work.written
        .retain(|stream, _| rows.iter().any(|r| &r.stream == stream));
    let now = Instant::now();
    let mut healthy = true;
    let mut stale: Vec<String> = Vec::new();
    for row in rows {
        if work.paused_until.is_some_and(|t| t > Instant::now()) {
            return;
        }
        if work.retry.waiting(&row.stream, now) {
            continue;
        }
        let runs = match head_runs(m, &row).await {
            Ok(Some(runs)) => runs,
            Ok(None) => continue,
            Err(error) => {
                work.retry.failed(&row.stream);
                m.health.failing(
                    NAME,
                    format!("cannot read the runs of {}: {error}", row.stream),
                );
                healthy = false;
                continue;
            }
        };
        let Some(first) = runs.first() else { continue };
        // Turning comments on (or a long outage) does not replay the
        // history: a head whose runs all finished over a day ago says nothing.
        let since = m.clock.now() - crate::checks::REPORT_WINDOW;
        if runs
            .iter()
            .all(|r| r.run.finished_at.is_some_and(|at| at < since))
        {
            if work.stale.insert(row.stream.clone()) {
                stale.push(row.stream.clone());
            }
            continue;
        }
        // The runs keep the repository as GitHub spelled it.
        let repository = first.run.repository.clone();
        let number = u64::try_from(row.number).unwrap_or_default();
        let body = summary::render(&row.head_sha, &runs, &m.config.public_url);
        let body_sha256 = hex::encode(Sha256::digest(body.as_bytes()));
        if work.written.get(&row.stream) == Some(&(row.head_seq, body_sha256.clone())) {
            continue;
        }
        let known = row.comment_id.and_then(|id| u64::try_from(id).ok());
        let head_seq = u32::try_from(row.head_seq).unwrap_or_default();
        let command = match write(github, &repository, number, known, &body).await {
            Ok((comment_id, posted)) => {
                work.retry.succeeded(&row.stream);
                work.written
                    .insert(row.stream.clone(), (row.head_seq, body_sha256.clone()));
                PullRequestCommand::RecordCommentWritten {
                    comment_id,
                    head_seq,
                    posted,
                    body_sha256,
                }
            }
            Err(failure) => {
                if let Some(wait) = failure.wait {
                    work.paused_until = Some(Instant::now() + wait);
                    tracing::warn!(?wait, "GitHub rate limit: pull request comments paused");
                }
                work.retry.failed(&row.stream);
                let permanent = failure.error.class == ErrorClass::Permanent;
                if !permanent && !work.recorded.insert((row.stream.clone(), row.head_seq)) {
                    continue;
                }
                PullRequestCommand::RecordCommentFailed {
                    head_seq,
                    class: failure.error.class,
                    message: failure.error.message,
                }
            }
        };
        let correlation = row
            .runs()
            .next()
            .and_then(|id| id.parse::<RunId>().ok())
            .map(|id| id.0);
        let mut envelope = Envelope::new(m.actor(NAME));
        if let Some(c) = correlation {
            envelope = envelope.correlated(c);
        }
        match pull_requests
            .execute(&row.stream, &command, &envelope)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(_)) => {}
            Err(error) => {
                m.health.failing(
                    NAME,
                    format!("cannot record the comment of {}: {error}", row.stream),
                );
                healthy = false;
            }
        }
    }
    if !stale.is_empty() {
        let shown: Vec<&str> = stale.iter().take(5).map(String::as_str).collect();
        let more = stale.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        m.notice(
            NAME,
            "comments-not-written",
            format!(
                "{} pull request(s) get no summary comment: their current head's runs finished over {} hours ago ({}{more})",
                stale.len(),
                crate::checks::REPORT_WINDOW.num_hours(),
                shown.join(", ")
            ),
        )
        .await;
    }
    if healthy {
        m.health.ok(NAME);
    }
}
