//! The `pull_request_comments` read model: per pull request, its current
//! head and that head's runs, whether it is closed, and the summary comment
//! written so far (its id, for which head). The comment writer's work list:
//! open pull requests whose current head has not been written.

use async_trait::async_trait;
use sp_domain::ErrorClass;
use sp_domain::pull_request::PullRequestEvent;
use sp_eventstore::{RecordedEvent, Tx, on_tx};

use crate::runner::{Projection, ProjectionError, Step, decode};

#[derive(Debug, Default)]
pub struct CommentsProjection;

impl CommentsProjection {
    pub const NAME: &'static str = "comments";
}

/// `pr-<owner>/<repo>#<number>`: the repository (lower case, as the stream
/// names it) and the number.
pub fn pull_request_of(stream: &str) -> Option<(&str, i64)> {
    let (repository, number) = stream.strip_prefix("pr-")?.rsplit_once('#')?;
    Some((repository, number.parse().ok()?))
}

async fn apply_event(tx: &mut Tx<'_>, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let Some((repository, number)) = pull_request_of(&event.stream_id) else {
        return Ok(());
    };
    let stream = event.stream_id.as_str();
    match decode::<PullRequestEvent>(event)? {
        PullRequestEvent::HeadObserved(head) => {
            let runs: Vec<String> = head.runs.iter().map(|r| r.run_id.to_string()).collect();
            let sql = "INSERT INTO pull_request_comments (stream, repository, number, head_seq,
                    head_sha, head_runs, closed)
                VALUES ($1, $2, $3, $4, $5, $6, FALSE)
                ON CONFLICT (stream) DO UPDATE SET head_seq = excluded.head_seq,
                    head_sha = excluded.head_sha, head_runs = excluded.head_runs, closed = FALSE";
            on_tx!(&mut *tx, c => sqlx::query(sql)
                .bind(stream)
                .bind(repository)
                .bind(number)
                .bind(i64::from(head.seq))
                .bind(&head.sha)
                .bind(runs.join(","))
                .execute(c)
                .await?
                .rows_affected());
        }
        PullRequestEvent::PullRequestClosed(_) => {
            let sql = "UPDATE pull_request_comments SET closed = TRUE WHERE stream = $1";
            on_tx!(&mut *tx, c => sqlx::query(sql).bind(stream).execute(c).await?.rows_affected());
        }
        PullRequestEvent::CommentWritten(w) => {
            let sql = "UPDATE pull_request_comments SET comment_id = $2, written_seq = $3,
                    written_sha256 = $4, last_error = NULL WHERE stream = $1";
            on_tx!(&mut *tx, c => sqlx::query(sql)
                .bind(stream)
                .bind(i64::try_from(w.comment_id).unwrap_or(i64::MAX))
                .bind(i64::from(w.head_seq))
                .bind(&w.body_sha256)
                .execute(c)
                .await?
                .rows_affected());
        }
        PullRequestEvent::CommentFailed(f) => {
            let permanent = (f.class == ErrorClass::Permanent).then_some(i64::from(f.head_seq));
            let sql = "UPDATE pull_request_comments SET last_error = $2,
                    failed_seq = COALESCE($3, failed_seq) WHERE stream = $1";
            on_tx!(&mut *tx, c => sqlx::query(sql)
                .bind(stream)
                .bind(&f.message)
                .bind(permanent)
                .execute(c)
                .await?
                .rows_affected());
        }
    }
    Ok(())
}

#[async_trait]
impl Projection for CommentsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["pull_request_comments"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        let mut changed = Vec::new();
        for step in steps {
            if step.event.stream_id.starts_with("pr-") {
                apply_event(tx, step.event).await?;
                changed.push(step.event.stream_id.clone());
            }
        }
        changed.dedup();
        Ok(changed)
    }
}
