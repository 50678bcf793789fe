//! GitHub's webhook payloads, as GitHub documents them, reduced to the fields
//! the platform uses. A missing or mistyped field is an error that names it.

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use sp_domain::intake::{
    GithubEvent, PullRequestAction, PullRequestDelivery, Push, Rerequested, WorkflowRunDelivery,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {event} payload: {message}")]
pub struct PayloadError {
    pub event: String,
    pub message: String,
}

/// A string the platform keeps: no NUL character (PostgreSQL cannot store
/// one, and no field GitHub sends that we use can hold one).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.contains('\0') {
        return Err(D::Error::custom("contains a NUL character"));
    }
    Ok(s)
}

fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| {
            if s.contains('\0') {
                Err(D::Error::custom("contains a NUL character"))
            } else {
                Ok(s)
            }
        })
        .transpose()
}

fn repository_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match sp_domain::ids::repository_problem(&s) {
        Some(problem) => Err(D::Error::custom(problem)),
        None => Ok(s),
    }
}

#[derive(Debug, Deserialize)]
struct Repository {
    #[serde(deserialize_with = "repository_name")]
    full_name: String,
    #[serde(default, deserialize_with = "optional_text")]
    default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(deserialize_with = "text")]
    login: String,
}

#[derive(Debug, Deserialize)]
struct PushPayload {
    #[serde(rename = "ref", deserialize_with = "text")]
    git_ref: String,
    #[serde(deserialize_with = "text")]
    before: String,
    #[serde(deserialize_with = "text")]
    after: String,
    #[serde(default)]
    deleted: bool,
    /// The branch was rewritten: `before` is not an ancestor of `after`.
    #[serde(default)]
    forced: bool,
    /// Empty when a branch is deleted.
    #[serde(default)]
    commits: Vec<PushCommit>,
    repository: Repository,
    sender: User,
}

#[derive(Debug, Deserialize)]
struct PushCommit {
    #[serde(deserialize_with = "text")]
    id: String,
}

#[derive(Debug, Deserialize)]
struct PullRequestPayload {
    #[serde(deserialize_with = "text")]
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    head: Head,
    base: Head,
    user: User,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct Head {
    #[serde(deserialize_with = "text")]
    sha: String,
    #[serde(rename = "ref", deserialize_with = "text")]
    git_ref: String,
}

#[derive(Debug, Deserialize)]
struct WorkflowRunPayload {
    #[serde(deserialize_with = "text")]
    action: String,
    workflow_run: WorkflowRun,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct WorkflowRun {
    id: u64,
    #[serde(default, deserialize_with = "optional_text")]
    name: Option<String>,
    #[serde(deserialize_with = "text")]
    head_sha: String,
    #[serde(default, deserialize_with = "optional_text")]
    head_branch: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    conclusion: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckRunPayload {
    #[serde(deserialize_with = "text")]
    action: String,
    check_run: CheckRun,
    repository: Repository,
    sender: User,
}

#[derive(Debug, Deserialize)]
struct CheckRun {
    #[serde(deserialize_with = "text")]
    head_sha: String,
    #[serde(default, deserialize_with = "optional_text")]
    external_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckSuitePayload {
    #[serde(deserialize_with = "text")]
    action: String,
    check_suite: CheckSuite,
    repository: Repository,
    sender: User,
}

#[derive(Debug, Deserialize)]
struct CheckSuite {
    #[serde(deserialize_with = "text")]
    head_sha: String,
}

/// Identifying fields of any payload, for the delivery record.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "optional_text")]
    pub action: Option<String>,
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    sender: Option<User>,
}

impl Envelope {
    pub fn repository(&self) -> Option<String> {
        self.repository.as_ref().map(|r| r.full_name.clone())
    }

    pub fn sender(&self) -> Option<String> {
        self.sender.as_ref().map(|s| s.login.clone())
    }
}

fn parse<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, PayloadError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        PayloadError {
            event: event.to_string(),
            message: if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            },
        }
    })?;
    // One JSON value and nothing after it, as GitHub sends.
    de.end().map_err(|e| PayloadError {
        event: event.to_string(),
        message: format!("the body holds more than one JSON value: {e}"),
    })?;
    Ok(value)
}

fn commit_sha(event: &str, field: &str, sha: &str) -> Result<String, PayloadError> {
    let ok = sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(PayloadError {
            event: event.to_string(),
            message: format!("{field}: {sha:?} is not a commit SHA"),
        })
    }
}

/// Parse the envelope fields of any JSON body (for recording who and what).
pub fn envelope(event: &str, body: &[u8]) -> Result<Envelope, PayloadError> {
    parse(event, body)
}

/// Parse a delivery of `event` (the `X-GitHub-Event` header).
pub fn parse_event(event: &str, body: &[u8]) -> Result<GithubEvent, PayloadError> {
    Ok(match event {
        "ping" => GithubEvent::Ping,
        "push" => {
            let p: PushPayload = parse(event, body)?;
            let default_branch = p.repository.default_branch.ok_or_else(|| PayloadError {
                event: event.into(),
                message: "repository.default_branch: missing field".into(),
            })?;
            GithubEvent::Push(Push {
                repository: p.repository.full_name,
                default_branch,
                git_ref: p.git_ref,
                before: commit_sha(event, "before", &p.before)?,
                after: commit_sha(event, "after", &p.after)?,
                commits: p
                    .commits
                    .iter()
                    .enumerate()
                    .map(|(i, c)| commit_sha(event, &format!("commits[{i}].id"), &c.id))
                    .collect::<Result<_, _>>()?,
                deleted: p.deleted,
                forced: p.forced,
                sender: p.sender.login,
            })
        }
        "pull_request" => {
            let p: PullRequestPayload = parse(event, body)?;
            let Some(action) = PullRequestAction::parse(&p.action) else {
                return Ok(GithubEvent::Other {
                    event: format!("pull_request {}", p.action),
                });
            };
            GithubEvent::PullRequest(PullRequestDelivery {
                repository: p.repository.full_name,
                action,
                number: p.number,
                head_sha: commit_sha(event, "pull_request.head.sha", &p.pull_request.head.sha)?,
                head_ref: p.pull_request.head.git_ref,
                base_ref: p.pull_request.base.git_ref,
                base_sha: commit_sha(event, "pull_request.base.sha", &p.pull_request.base.sha)?,
                author: p.pull_request.user.login,
                updated_at: p.pull_request.updated_at,
            })
        }
        "workflow_run" => {
            let p: WorkflowRunPayload = parse(event, body)?;
            if p.action != "completed" {
                return Ok(GithubEvent::Other {
                    event: format!("workflow_run {}", p.action),
                });
            }
            GithubEvent::WorkflowRun(WorkflowRunDelivery {
                repository: p.repository.full_name,
                workflow_run_id: p.workflow_run.id,
                workflow: p.workflow_run.name.unwrap_or_default(),
                head_sha: commit_sha(event, "workflow_run.head_sha", &p.workflow_run.head_sha)?,
                head_branch: p.workflow_run.head_branch,
                conclusion: p
                    .workflow_run
                    .conclusion
                    .unwrap_or_else(|| "unknown".into()),
            })
        }
        "check_run" => {
            let p: CheckRunPayload = parse(event, body)?;
            if p.action != "rerequested" {
                return Ok(GithubEvent::Other {
                    event: format!("check_run {}", p.action),
                });
            }
            GithubEvent::Rerequested(Rerequested {
                repository: p.repository.full_name,
                head_sha: commit_sha(event, "check_run.head_sha", &p.check_run.head_sha)?,
                external_id: Some(p.check_run.external_id.unwrap_or_default()),
                sender: p.sender.login,
            })
        }
        "check_suite" => {
            let p: CheckSuitePayload = parse(event, body)?;
            if p.action != "rerequested" {
                return Ok(GithubEvent::Other {
                    event: format!("check_suite {}", p.action),
                });
            }
            GithubEvent::Rerequested(Rerequested {
                repository: p.repository.full_name,
                head_sha: commit_sha(event, "check_suite.head_sha", &p.check_suite.head_sha)?,
                external_id: None,
                sender: p.sender.login,
            })
        }
        other => GithubEvent::Other {
            event: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_fields_are_named_with_their_path() {
        let body = json!({
            "action": "opened", "number": 1,
            "pull_request": {"head": {"ref": "x"}, "user": {"login": "a"}, "updated_at": "2026-11-30T10:00:00Z"},
            "repository": {"full_name": "o/r"}
        });
        let err = parse_event("pull_request", body.to_string().as_bytes()).expect_err("invalid");
        assert!(err.to_string().contains("pull_request.head"), "{err}");
        assert!(err.to_string().contains("sha"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [&b"{"[..], b"null", b"[]", b"\xff\xfe", b"{\"ref\": 5}"] {
            assert!(parse_event("push", body).is_err());
            assert!(parse_event("pull_request", body).is_err());
            assert!(parse_event("workflow_run", body).is_err());
        }
        assert_eq!(
            parse_event("issues", b"{}"),
            Ok(GithubEvent::Other {
                event: "issues".into()
            })
        );
    }

    #[test]
    fn a_sha_that_is_not_one_is_refused() {
        let body = json!({
            "ref": "refs/heads/master", "before": "abc", "after": "0".repeat(40),
            "repository": {"full_name": "o/r", "default_branch": "master"}, "sender": {"login": "a"}
        });
        let err = parse_event("push", body.to_string().as_bytes()).expect_err("invalid");
        assert!(err.to_string().contains("before"), "{err}");
    }
}
