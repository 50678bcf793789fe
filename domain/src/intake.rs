//! What a GitHub delivery asks of the platform, decided without I/O: the
//! adapter parses GitHub's payload into a [`GithubEvent`], [`plan`] says what
//! to do, and the write side does it.

use chrono::{DateTime, Utc};

use crate::blocklist::Blocklist;
use crate::delivery::RecordBuild;
use crate::ids::{Platform, RunId};
use crate::pull_request::PlannedRun;
use crate::run::Ancestry;

/// Which deliveries queue runs, and for which platforms.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeConfig {
    pub platforms: Vec<Platform>,
    /// Branches whose pushes are tested; empty means the repository's default branch.
    pub branches: Vec<String>,
    /// `owner/name` of repositories served; empty means any.
    pub repositories: Vec<String>,
    /// Priority of push runs (a higher value gets a VM first).
    pub push_priority: i32,
    pub pull_request_priority: i32,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            platforms: vec![Platform::new("linux").unwrap_or_else(|_| unreachable!("valid name"))],
            branches: vec![],
            repositories: vec![],
            push_priority: 1,
            pull_request_priority: 0,
        }
    }
}

/// A delivery, reduced to what the platform uses.
#[derive(Debug, Clone, PartialEq)]
pub enum GithubEvent {
    Ping,
    Push(Push),
    PullRequest(PullRequestDelivery),
    WorkflowRun(WorkflowRunDelivery),
    /// "Re-run" pressed on GitHub: a check run's (`run` is its
    /// `external_id`, the platform's run) or a whole check suite's.
    Rerequested(Rerequested),
    /// An event (or action) the platform does not act on.
    Other {
        event: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub repository: String,
    pub default_branch: String,
    /// The full ref, e.g. `refs/heads/master`.
    pub git_ref: String,
    pub before: String,
    pub after: String,
    /// The pushed commits' SHAs, oldest first, as the payload lists them
    /// (GitHub lists at most 20).
    pub commits: Vec<String>,
    pub deleted: bool,
    /// A force push: `before` is not an ancestor of `after`.
    pub forced: bool,
    pub sender: String,
}

impl Push {
    /// The pushed commit's known ancestors, nearest first: the commits
    /// pushed before it, then the branch's previous head (unless the push
    /// rewrote the branch).
    fn ancestry(&self, branch: &str) -> Ancestry {
        let mut ancestors: Vec<String> = self
            .commits
            .iter()
            .rev()
            .filter(|c| **c != self.after)
            .cloned()
            .collect();
        if self.before != ZERO_SHA && !self.forced {
            ancestors.push(self.before.clone());
        }
        ancestors.dedup();
        Ancestry {
            base_branch: Some(branch.to_string()),
            ancestors,
        }
    }
}

impl PullRequestDelivery {
    /// What the pull request is measured against: its base branch and the
    /// base commit GitHub named.
    pub fn ancestry(&self) -> Ancestry {
        Ancestry {
            base_branch: Some(self.base_ref.clone()),
            ancestors: vec![self.base_sha.clone()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestAction {
    Opened,
    Reopened,
    Synchronize,
    ReadyForReview,
    Closed,
}

impl PullRequestAction {
    pub fn parse(action: &str) -> Option<Self> {
        Some(match action {
            "opened" => PullRequestAction::Opened,
            "reopened" => PullRequestAction::Reopened,
            "synchronize" => PullRequestAction::Synchronize,
            "ready_for_review" => PullRequestAction::ReadyForReview,
            "closed" => PullRequestAction::Closed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRequestDelivery {
    pub repository: String,
    pub action: PullRequestAction,
    pub number: u64,
    pub head_sha: String,
    pub head_ref: String,
    /// The branch it is to be merged into, and that branch's commit GitHub
    /// compares it with.
    pub base_ref: String,
    pub base_sha: String,
    /// Who opened the pull request.
    pub author: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRunDelivery {
    pub repository: String,
    pub workflow_run_id: u64,
    pub workflow: String,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub conclusion: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rerequested {
    pub repository: String,
    pub head_sha: String,
    /// A check run's `external_id`; `None` for a check suite.
    pub external_id: Option<String>,
    /// Who pressed it.
    pub sender: String,
}

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Pong,
    Ignore(String),
    QueuePush {
        repository: String,
        commit_sha: String,
        branch: String,
        ancestry: Ancestry,
        runs: Vec<PlannedRun>,
        priority: i32,
    },
    ObservePullRequestHead {
        delivery: PullRequestDelivery,
        priority: i32,
    },
    ClosePullRequest(PullRequestDelivery),
    RecordBuild(RecordBuild),
    /// Queue new runs of a commit: on the platform of run `of`, or on every
    /// platform; `requested_by` pressed "Re-run" on GitHub.
    Rerun {
        repository: String,
        commit_sha: String,
        of: Option<RunId>,
        requested_by: String,
    },
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Decide what a delivery asks for.
pub fn plan(event: &GithubEvent, config: &IntakeConfig, blocklist: &Blocklist) -> Plan {
    match event {
        GithubEvent::Ping => Plan::Pong,
        GithubEvent::Other { event } => Plan::Ignore(format!("ignored: {event}")),
        GithubEvent::Push(push) => not_served(&push.repository, config)
            .unwrap_or_else(|| plan_push(push, config, blocklist)),
        GithubEvent::PullRequest(pr) => not_served(&pr.repository, config).unwrap_or_else(|| {
            if let Some(reason) = blocklist.reason(&pr.author) {
                return Plan::Ignore(format!(
                    "pull request author {} is blocked: {reason}",
                    pr.author
                ));
            }
            match pr.action {
                PullRequestAction::Closed => Plan::ClosePullRequest(pr.clone()),
                _ => Plan::ObservePullRequestHead {
                    delivery: pr.clone(),
                    priority: config.pull_request_priority,
                },
            }
        }),
        GithubEvent::Rerequested(r) => not_served(&r.repository, config).unwrap_or_else(|| {
            if let Some(reason) = blocklist.reason(&r.sender) {
                return Plan::Ignore(format!("{} is blocked: {reason}", r.sender));
            }
            let of = match &r.external_id {
                None => None,
                Some(id) => match id.parse::<RunId>() {
                    Ok(run) => Some(run),
                    Err(_) => {
                        return Plan::Ignore(format!(
                            "check run {id:?} was not made by this platform"
                        ));
                    }
                },
            };
            Plan::Rerun {
                repository: r.repository.clone(),
                commit_sha: r.head_sha.clone(),
                of,
                requested_by: r.sender.clone(),
            }
        }),
        GithubEvent::WorkflowRun(w) => not_served(&w.repository, config).unwrap_or_else(|| {
            Plan::RecordBuild(RecordBuild {
                repository: w.repository.clone(),
                commit_sha: w.head_sha.clone(),
                workflow_run_id: w.workflow_run_id,
                workflow: w.workflow.clone(),
                conclusion: w.conclusion.clone(),
                branch: w.head_branch.clone(),
            })
        }),
    }
}

/// Deliveries of repositories outside the allow-list are ignored, with why.
fn not_served(repository: &str, config: &IntakeConfig) -> Option<Plan> {
    let served = config.repositories.is_empty()
        || config
            .repositories
            .iter()
            .any(|r| r.eq_ignore_ascii_case(repository));
    (!served).then(|| {
        Plan::Ignore(format!(
            "repository {repository} is not in the configured allow-list"
        ))
    })
}

fn plan_push(push: &Push, config: &IntakeConfig, blocklist: &Blocklist) -> Plan {
    let Some(branch) = push.git_ref.strip_prefix("refs/heads/") else {
        return Plan::Ignore(format!("{} is not a branch", push.git_ref));
    };
    if push.deleted || push.after == ZERO_SHA {
        return Plan::Ignore(format!("branch {branch} was deleted"));
    }
    if push.before == push.after {
        return Plan::Ignore(format!(
            "push to {branch} changed nothing (before == after)"
        ));
    }
    let tested = if config.branches.is_empty() {
        branch == push.default_branch
    } else {
        config.branches.iter().any(|b| b == branch)
    };
    if !tested {
        return Plan::Ignore(format!("pushes to {branch} are not tested"));
    }
    if let Some(reason) = blocklist.reason(&push.sender) {
        return Plan::Ignore(format!("pusher {} is blocked: {reason}", push.sender));
    }
    let runs = config
        .platforms
        .iter()
        .map(|platform| PlannedRun {
            platform: platform.clone(),
            run_id: RunId::derived(&format!(
                "push:{}:{branch}:{}:{platform}",
                push.repository.to_ascii_lowercase(),
                push.after
            )),
        })
        .collect();
    Plan::QueuePush {
        repository: push.repository.clone(),
        commit_sha: push.after.clone(),
        branch: branch.to_string(),
        ancestry: push.ancestry(branch),
        runs,
        priority: config.push_priority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregate;
    use crate::blocklist::BlocklistCommand;

    fn push(git_ref: &str, before: &str, after: &str) -> GithubEvent {
        GithubEvent::Push(Push {
            repository: "CCExtractor/ccextractor".into(),
            default_branch: "master".into(),
            git_ref: git_ref.into(),
            before: before.into(),
            after: after.into(),
            commits: vec![after.into()],
            deleted: false,
            forced: false,
            sender: "octocat".into(),
        })
    }

    fn sha(c: char) -> String {
        c.to_string().repeat(40)
    }

    #[test]
    fn pushes_to_the_default_branch_queue_one_run_per_platform() {
        let config = IntakeConfig {
            platforms: vec![
                Platform::new("linux").expect("valid"),
                Platform::new("windows").expect("valid"),
            ],
            ..IntakeConfig::default()
        };
        let plan = plan(
            &push("refs/heads/master", &sha('a'), &sha('b')),
            &config,
            &Blocklist::default(),
        );
        let Plan::QueuePush { runs, .. } = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(runs.len(), 2);
        assert_ne!(runs[0].run_id, runs[1].run_id);
    }

    #[test]
    fn ignored_pushes_say_why() {
        let c = IntakeConfig::default();
        let b = Blocklist::default();
        let reason = |event| match plan(&event, &c, &b) {
            Plan::Ignore(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(reason(push("refs/heads/feature", &sha('a'), &sha('b'))).contains("not tested"));
        assert!(reason(push("refs/tags/v1", &sha('a'), &sha('b'))).contains("not a branch"));
        assert!(reason(push("refs/heads/master", &sha('a'), ZERO_SHA)).contains("deleted"));
        assert!(
            reason(push("refs/heads/master", &sha('a'), &sha('a'))).contains("before == after")
        );
    }

    #[test]
    fn blocked_users_and_foreign_repositories_queue_nothing() {
        let ctx = crate::Context {
            now: Utc::now(),
            policy: crate::policy::Policy::default(),
        };
        let blocklist = Blocklist::default();
        let events = blocklist
            .decide(
                &BlocklistCommand::Block {
                    login: "OctoCat".into(),
                    reason: "spam".into(),
                },
                &ctx,
            )
            .expect("blocks");
        let blocklist = events.iter().fold(blocklist, |b, e| b.apply(e));
        let p = plan(
            &push("refs/heads/master", &sha('a'), &sha('b')),
            &IntakeConfig::default(),
            &blocklist,
        );
        assert!(
            matches!(&p, Plan::Ignore(r) if r.contains("blocked: spam")),
            "{p:?}"
        );

        let config = IntakeConfig {
            repositories: vec!["someone/else".into()],
            ..IntakeConfig::default()
        };
        let p = plan(
            &push("refs/heads/master", &sha('a'), &sha('b')),
            &config,
            &Blocklist::default(),
        );
        assert!(
            matches!(&p, Plan::Ignore(r) if r.contains("allow-list")),
            "{p:?}"
        );
    }

    #[test]
    fn a_push_names_its_commits_then_the_previous_head_as_ancestors() {
        let GithubEvent::Push(mut p) = push("refs/heads/master", &sha('1'), &sha('4')) else {
            unreachable!()
        };
        p.commits = vec![sha('2'), sha('3'), sha('4')];
        let planned = plan(
            &GithubEvent::Push(p.clone()),
            &IntakeConfig::default(),
            &Blocklist::default(),
        );
        let Plan::QueuePush { ancestry, .. } = planned else {
            panic!("{planned:?}")
        };
        assert_eq!(ancestry.base_branch.as_deref(), Some("master"));
        assert_eq!(ancestry.ancestors, vec![sha('3'), sha('2'), sha('1')]);
        // A new branch has no previous head; a rewritten one's is not an
        // ancestor.
        p.commits = vec![sha('4')];
        p.forced = true;
        assert!(p.ancestry("master").ancestors.is_empty());
        p.forced = false;
        p.before = ZERO_SHA.into();
        assert!(p.ancestry("master").ancestors.is_empty());
    }
}
