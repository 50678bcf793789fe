//! The `pull_request_comments` read model: per pull request, its current
//! head and that head's runs, whether it is closed, and the summary comment
//! written so far (its id, for which head). The comment writer's work list:
//! open pull requests whose current head has not been written.

use async_trait::async_trait;
use sp_domain::ErrorClass;
use sp_domain::pull_request::PullRequestEvent;
use sp_eventstore::{Tx, on_tx};

use crate::batch::rows_per_statement;
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

/// A pull request's new head, as the model's row takes it.
struct Head {
    stream: String,
    repository: String,
    number: i64,
    seq: i64,
    sha: String,
    runs: String,
}

/// Heads observed in a row, written in one statement: a pull request opened
/// or pushed to is most of what this model sees.
async fn write_heads(tx: &mut Tx<'_>, heads: &mut Vec<Head>) -> Result<(), ProjectionError> {
    // One row per pull request (an upsert may not touch a row twice), the
    // last head winning.
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<&Head> = heads
        .iter()
        .rev()
        .filter(|h| seen.insert(h.stream.as_str()))
        .collect();
    for chunk in rows.chunks(rows_per_statement(6)) {
        on_tx!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO pull_request_comments (stream, repository, number, head_seq,
                    head_sha, head_runs, closed) ",
            );
            q.push_values(chunk, |mut b, h| {
                b.push_bind(&h.stream)
                    .push_bind(&h.repository)
                    .push_bind(h.number)
                    .push_bind(h.seq)
                    .push_bind(&h.sha)
                    .push_bind(&h.runs)
                    .push("FALSE");
            });
            q.push(
                " ON CONFLICT (stream) DO UPDATE SET head_seq = excluded.head_seq,
                    head_sha = excluded.head_sha, head_runs = excluded.head_runs, closed = FALSE",
            );
            q.build().execute(c).await?.rows_affected()
        });
    }
    heads.clear();
    Ok(())
}

async fn apply_event(
    tx: &mut Tx<'_>,
    event: &PullRequestEvent,
    stream: &str,
) -> Result<(), ProjectionError> {
    match event {
        // Collected by the caller and written by `write_heads`.
        PullRequestEvent::HeadObserved(_) => {}
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
        let mut heads = Vec::new();
        for step in steps {
            let event = step.event;
            let Some((repository, number)) = pull_request_of(&event.stream_id) else {
                continue;
            };
            let decoded = decode::<PullRequestEvent>(event)?;
            if let PullRequestEvent::HeadObserved(head) = &decoded {
                let runs: Vec<String> = head.runs.iter().map(|r| r.run_id.to_string()).collect();
                heads.push(Head {
                    stream: event.stream_id.clone(),
                    repository: repository.to_string(),
                    number,
                    seq: i64::from(head.seq),
                    sha: head.sha.clone(),
                    runs: runs.join(","),
                });
            } else {
                // What follows a head applies to the row the head wrote.
                write_heads(tx, &mut heads).await?;
                apply_event(tx, &decoded, &event.stream_id).await?;
            }
            changed.push(event.stream_id.clone());
        }
        write_heads(tx, &mut heads).await?;
        changed.dedup();
        Ok(changed)
    }
}
