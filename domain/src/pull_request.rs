//! A pull request's heads, in the order GitHub says they happened (stream
//! `pr-<owner>/<repo>#<number>`).
//!
//! The old platform cancelled the *new* run when an update and a
//! "closed or updated" check raced. Here every head is recorded with the time
//! GitHub gave it, a delivery older than the newest known head is refused, and
//! the runs of a head are named (derived ids) before they are queued, so the
//! intake can always finish the job idempotently: queue the current head's
//! runs, then supersede every older head's runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::EventSchema;
use crate::context::Context;
use crate::ids::{Platform, RunId};
use crate::run::ErrorClass;

/// The stream of a pull request.
pub fn stream(repository: &str, number: u64) -> String {
    format!("pr-{}#{number}", repository.to_ascii_lowercase())
}

/// One run the intake queues for a head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub platform: Platform,
    pub run_id: RunId,
}

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumCount,
    strum::VariantNames,
)]
pub enum PullRequestEvent {
    HeadObserved(HeadObserved),
    PullRequestClosed(Closed),
    CommentWritten(CommentWritten),
    CommentFailed(CommentFailed),
}

/// GitHub accepted the pull request's one summary comment, posted or edited,
/// saying what the runs of head `head_seq` found. Its id is kept so every
/// later head edits the same comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentWritten {
    pub at: DateTime<Utc>,
    pub comment_id: u64,
    pub head_seq: u32,
    /// Posted now (rather than edited, or found by its marker after a crash).
    pub posted: bool,
    /// SHA-256 of the body GitHub accepted.
    pub body_sha256: String,
}

/// The summary comment could not be written for head `head_seq`; a
/// permanent failure ends the attempts for that head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentFailed {
    pub at: DateTime<Utc>,
    pub head_seq: u32,
    pub class: ErrorClass,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadObserved {
    pub at: DateTime<Utc>,
    /// 1 for the first head, then one more per head (a force-push back to an
    /// old commit is a new head and gets new runs).
    pub seq: u32,
    pub sha: String,
    pub head_ref: String,
    /// GitHub's `pull_request.updated_at` for this head.
    pub updated_at: DateTime<Utc>,
    pub author: String,
    pub runs: Vec<PlannedRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closed {
    pub at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventSchema for PullRequestEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PullRequestCommand {
    ObserveHead {
        repository: String,
        number: u64,
        sha: String,
        head_ref: String,
        updated_at: DateTime<Utc>,
        author: String,
        platforms: Vec<Platform>,
    },
    Close {
        updated_at: DateTime<Utc>,
    },
    RecordCommentWritten {
        comment_id: u64,
        head_seq: u32,
        posted: bool,
        body_sha256: String,
    },
    RecordCommentFailed {
        head_seq: u32,
        class: ErrorClass,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullRequestRejection {
    #[error(
        "this delivery describes the pull request as of {delivered}, older than the head {known_sha} known as of {known}"
    )]
    Stale {
        delivered: DateTime<Utc>,
        known: DateTime<Utc>,
        known_sha: String,
    },
    #[error("the pull request is already closed")]
    AlreadyClosed,
    #[error("no head of this pull request is known")]
    Unknown,
    #[error("head {0} of this pull request is not known")]
    UnknownHead(u32),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullRequestState {
    pub heads: Vec<HeadObserved>,
    /// Set when closed, cleared by the next head (a reopen).
    pub closed: Option<DateTime<Utc>>,
    /// The summary comment: its id and the last one written (head, body).
    pub comment: Option<CommentWritten>,
}

impl PullRequestState {
    pub fn current(&self) -> Option<&HeadObserved> {
        self.heads.last()
    }

    /// Runs of heads before the current one, on `platform`.
    pub fn older_runs(&self, platform: &Platform) -> Vec<RunId> {
        let n = self.heads.len().saturating_sub(1);
        self.heads[..n]
            .iter()
            .flat_map(|h| h.runs.iter())
            .filter(|r| r.platform == *platform)
            .map(|r| r.run_id)
            .collect()
    }

    /// Every run ever queued for this pull request.
    pub fn all_runs(&self) -> Vec<RunId> {
        self.heads
            .iter()
            .flat_map(|h| h.runs.iter().map(|r| r.run_id))
            .collect()
    }

    fn known_head(&self, seq: u32) -> Result<(), PullRequestRejection> {
        if self.heads.iter().any(|h| h.seq == seq) {
            Ok(())
        } else {
            Err(PullRequestRejection::UnknownHead(seq))
        }
    }

    /// The newest time GitHub has told us about.
    fn known_as_of(&self) -> Option<DateTime<Utc>> {
        let head = self.heads.last().map(|h| h.updated_at);
        head.max(self.closed)
    }
}

impl Aggregate for PullRequestState {
    type Event = PullRequestEvent;
    type Command = PullRequestCommand;
    type Rejection = PullRequestRejection;

    fn apply(mut self, event: &PullRequestEvent) -> Self {
        match event {
            PullRequestEvent::HeadObserved(h) => {
                self.heads.push(h.clone());
                self.closed = None;
            }
            PullRequestEvent::PullRequestClosed(c) => self.closed = Some(c.updated_at),
            PullRequestEvent::CommentWritten(c) => self.comment = Some(c.clone()),
            PullRequestEvent::CommentFailed(_) => {}
        }
        self
    }

    fn decide(
        &self,
        command: &PullRequestCommand,
        ctx: &Context,
    ) -> Result<Vec<PullRequestEvent>, PullRequestRejection> {
        match command {
            PullRequestCommand::ObserveHead {
                repository,
                number,
                sha,
                head_ref,
                updated_at,
                author,
                platforms,
            } => {
                if let Some(current) = self.current()
                    && current.sha == *sha
                    && self.closed.is_none()
                {
                    // The head we know (a redelivery, `ready_for_review`): nothing new.
                    return Ok(vec![]);
                }
                if let Some(known) = self.known_as_of()
                    && *updated_at < known
                {
                    return Err(PullRequestRejection::Stale {
                        delivered: *updated_at,
                        known,
                        known_sha: self.current().map(|h| h.sha.clone()).unwrap_or_default(),
                    });
                }
                let seq = u32::try_from(self.heads.len()).unwrap_or(u32::MAX - 1) + 1;
                let runs = platforms
                    .iter()
                    .map(|platform| PlannedRun {
                        platform: platform.clone(),
                        run_id: RunId::derived(&format!(
                            "pr:{}#{number}:{seq}:{sha}:{platform}",
                            repository.to_ascii_lowercase()
                        )),
                    })
                    .collect();
                Ok(vec![PullRequestEvent::HeadObserved(HeadObserved {
                    at: ctx.now,
                    seq,
                    sha: sha.clone(),
                    head_ref: head_ref.clone(),
                    updated_at: *updated_at,
                    author: author.clone(),
                    runs,
                })])
            }
            PullRequestCommand::Close { updated_at } => {
                if self.heads.is_empty() {
                    return Err(PullRequestRejection::Unknown);
                }
                if self.closed.is_some() {
                    return Err(PullRequestRejection::AlreadyClosed);
                }
                if let Some(known) = self.known_as_of()
                    && *updated_at < known
                {
                    return Err(PullRequestRejection::Stale {
                        delivered: *updated_at,
                        known,
                        known_sha: self.current().map(|h| h.sha.clone()).unwrap_or_default(),
                    });
                }
                Ok(vec![PullRequestEvent::PullRequestClosed(Closed {
                    at: ctx.now,
                    updated_at: *updated_at,
                })])
            }
            PullRequestCommand::RecordCommentWritten {
                comment_id,
                head_seq,
                posted,
                body_sha256,
            } => {
                self.known_head(*head_seq)?;
                let same = self.comment.as_ref().is_some_and(|c| {
                    c.comment_id == *comment_id
                        && c.head_seq == *head_seq
                        && c.body_sha256 == *body_sha256
                });
                if same {
                    return Ok(vec![]);
                }
                Ok(vec![PullRequestEvent::CommentWritten(CommentWritten {
                    at: ctx.now,
                    comment_id: *comment_id,
                    head_seq: *head_seq,
                    posted: *posted,
                    body_sha256: body_sha256.clone(),
                })])
            }
            PullRequestCommand::RecordCommentFailed {
                head_seq,
                class,
                message,
            } => {
                self.known_head(*head_seq)?;
                Ok(vec![PullRequestEvent::CommentFailed(CommentFailed {
                    at: ctx.now,
                    head_seq: *head_seq,
                    class: *class,
                    message: message.clone(),
                })])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::policy::Policy;

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
            .single()
            .expect("time")
            + Duration::minutes(minute)
    }

    fn ctx() -> Context {
        Context {
            now: t(100),
            policy: Policy::default(),
        }
    }

    fn observe(sha: &str, minute: i64) -> PullRequestCommand {
        PullRequestCommand::ObserveHead {
            repository: "CCExtractor/ccextractor".into(),
            number: 12,
            sha: sha.into(),
            head_ref: "feature".into(),
            updated_at: t(minute),
            author: "octocat".into(),
            platforms: vec![
                Platform::new("linux").expect("valid"),
                Platform::new("windows").expect("valid"),
            ],
        }
    }

    fn step(state: PullRequestState, command: PullRequestCommand) -> PullRequestState {
        let events = state.decide(&command, &ctx()).expect("accepted");
        events.iter().fold(state, |s, e| s.apply(e))
    }

    #[test]
    fn a_new_head_names_its_runs_and_the_older_ones() {
        let s = step(PullRequestState::default(), observe("aaa", 0));
        let s = step(s, observe("bbb", 5));
        let linux = Platform::new("linux").expect("valid");
        assert_eq!(s.heads.len(), 2);
        let first_linux = s.heads[0].runs[0].run_id;
        assert_eq!(s.older_runs(&linux), vec![first_linux]);
        assert_ne!(s.heads[1].runs[0].run_id, first_linux);
    }

    #[test]
    fn an_older_delivery_arriving_late_is_refused() {
        let s = step(PullRequestState::default(), observe("bbb", 5));
        let late = s.decide(&observe("aaa", 0), &ctx());
        assert!(
            matches!(late, Err(PullRequestRejection::Stale { .. })),
            "{late:?}"
        );
    }

    #[test]
    fn the_same_head_again_is_nothing_new() {
        let s = step(PullRequestState::default(), observe("aaa", 0));
        assert_eq!(s.decide(&observe("aaa", 3), &ctx()), Ok(vec![]));
    }

    #[test]
    fn reopening_at_the_same_commit_queues_new_runs() {
        let s = step(PullRequestState::default(), observe("aaa", 0));
        let s = step(s, PullRequestCommand::Close { updated_at: t(1) });
        assert!(s.closed.is_some());
        let s = step(s, observe("aaa", 2));
        assert_eq!(s.heads.len(), 2);
        assert_ne!(s.heads[0].runs, s.heads[1].runs);
        assert!(s.closed.is_none());
    }

    #[test]
    fn a_close_older_than_the_head_is_refused() {
        let s = step(PullRequestState::default(), observe("bbb", 5));
        assert!(matches!(
            s.decide(&PullRequestCommand::Close { updated_at: t(1) }, &ctx()),
            Err(PullRequestRejection::Stale { .. })
        ));
    }
}
