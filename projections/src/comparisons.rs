//! The `comparisons` read model: what each completed run's change did. When
//! a run completes, each regression test in its scope is observed (judged
//! with the verdict's rules, with its exit code and produced hashes) and
//! classified against a reference run of the same repository and platform
//! that completed earlier in the log:
//!
//! 0. for a run a person asked for (a rerun, an operator's enqueue), the
//!    same commit's previous completed run: what the rerun changed;
//! 1. the closest ancestor with a completed run: the commits GitHub named
//!    when the run was queued (a push's earlier commits and previous head,
//!    a pull request's base commit), nearest first;
//! 2. otherwise the latest completed run of the base branch (a push's own
//!    branch, another commit; a pull request's base branch);
//! 3. otherwise none, and every test is "no reference", said as such.
//!
//! The reference is chosen among rows of this model only, which hold the
//! runs completed before in the log, so a rebuild chooses as the live model
//! did. A reference that completes later does not change an earlier
//! comparison.

use std::collections::HashMap;

use async_trait::async_trait;
use sp_domain::comparison::{self, Class, Observations};
use sp_domain::{RunEvent, RunInfo, Trigger};

use crate::runner::{Projection, ProjectionError, Step};
use sp_eventstore::Tx;
use sp_eventstore::on_tx;

#[derive(Debug, Default)]
pub struct ComparisonsProjection;

impl ComparisonsProjection {
    pub const NAME: &'static str = "comparisons";
}

/// Which earlier run a comparison is against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceKind {
    /// The same commit's previous completed run (for a manual run).
    SameCommit,
    /// The closest ancestor commit with a completed run.
    Ancestor,
    /// The latest completed run of the base branch.
    Base,
}

impl ReferenceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReferenceKind::SameCommit => "same_commit",
            ReferenceKind::Ancestor => "ancestor",
            ReferenceKind::Base => "base",
        }
    }

    pub fn parse(s: &str) -> Option<ReferenceKind> {
        match s {
            "same_commit" => Some(ReferenceKind::SameCommit),
            "ancestor" => Some(ReferenceKind::Ancestor),
            "base" => Some(ReferenceKind::Base),
            _ => None,
        }
    }
}

/// A completed run of this model, as a candidate reference.
#[derive(Debug, sqlx::FromRow)]
struct Candidate {
    run_id: String,
    commit_sha: String,
    observations: String,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// The reference for `info` among the runs completed so far, and in words
/// which it is or why there is none.
async fn reference(
    tx: &mut Tx<'_>,
    info: &RunInfo,
) -> Result<(Option<(ReferenceKind, Candidate)>, String), sqlx::Error> {
    let ancestry = &info.ancestry;
    if matches!(
        info.trigger,
        Trigger::Manual { .. } | Trigger::Custom { .. }
    ) {
        let sql = "SELECT run_id, commit_sha, observations FROM run_comparisons
            WHERE repository = $1 AND platform = $2 AND commit_sha = $3
            ORDER BY commit_id DESC, position DESC LIMIT 1";
        let found: Option<Candidate> = on_tx!(&mut *tx, c => sqlx::query_as::<_, Candidate>(sql)
            .bind(&info.repository)
            .bind(info.platform.as_str())
            .bind(&info.commit_sha)
            .fetch_optional(c)
            .await?);
        if let Some(candidate) = found {
            let note = format!(
                "the previous finished run of this commit on {}",
                info.platform
            );
            return Ok((Some((ReferenceKind::SameCommit, candidate)), note));
        }
    }
    if !ancestry.ancestors.is_empty() {
        let found: Vec<Candidate> = on_tx!(&mut *tx, c => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT run_id, commit_sha, observations FROM run_comparisons WHERE repository = ",
            );
            q.push_bind(&info.repository)
                .push(" AND platform = ")
                .push_bind(info.platform.as_str())
                .push(" AND commit_sha IN (");
            let mut shas = q.separated(", ");
            for sha in &ancestry.ancestors {
                shas.push_bind(sha);
            }
            q.push(") ORDER BY commit_id DESC, position DESC");
            q.build_query_as::<Candidate>().fetch_all(c).await?
        });
        // Nearest ancestor first; its latest run (the rows are newest first).
        for sha in &ancestry.ancestors {
            if let Some(i) = found.iter().position(|c| &c.commit_sha == sha) {
                let mut found = found;
                let candidate = found.swap_remove(i);
                // A pull request's base commit is the base branch's head
                // GitHub compared it with, not necessarily where the branch
                // forked: said as such.
                let note = match (&info.trigger, &ancestry.base_branch) {
                    (Trigger::PullRequest { .. }, Some(branch)) => format!(
                        "{}, the head of {branch} the pull request is compared with on GitHub, on {}",
                        short(sha),
                        info.platform
                    ),
                    _ => format!(
                        "{}, the closest ancestor with a finished run on {}",
                        short(sha),
                        info.platform
                    ),
                };
                return Ok((Some((ReferenceKind::Ancestor, candidate)), note));
            }
        }
    }
    let Some(branch) = &ancestry.base_branch else {
        let note = match &info.trigger {
            Trigger::Manual { .. } | Trigger::Custom { .. } => {
                "a run queued by hand names no branch or ancestor to compare with".to_string()
            }
            _ => "GitHub named no base branch or ancestor for this commit".to_string(),
        };
        return Ok((None, note));
    };
    let sql = "SELECT run_id, commit_sha, observations FROM run_comparisons
        WHERE repository = $1 AND platform = $2 AND pushed_branch = $3 AND commit_sha <> $4
        ORDER BY commit_id DESC, position DESC LIMIT 1";
    let found: Option<Candidate> = on_tx!(&mut *tx, c => sqlx::query_as::<_, Candidate>(sql)
        .bind(&info.repository)
        .bind(info.platform.as_str())
        .bind(branch)
        .bind(&info.commit_sha)
        .fetch_optional(c)
        .await?);
    Ok(match found {
        Some(candidate) => {
            let note = format!(
                "{}, the latest finished run of {branch} on {}",
                short(&candidate.commit_sha),
                info.platform
            );
            (Some((ReferenceKind::Base, candidate)), note)
        }
        None => {
            let known = if ancestry.ancestors.is_empty() {
                String::new()
            } else {
                format!(" or of the {} known ancestor(s)", ancestry.ancestors.len())
            };
            (
                None,
                format!(
                    "no finished run of {branch}{known} on {} before this one",
                    info.platform
                ),
            )
        }
    })
}

#[async_trait]
impl Projection for ComparisonsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["run_comparisons"]
    }

    async fn apply(
        &self,
        tx: &mut Tx<'_>,
        steps: &[Step<'_>],
    ) -> Result<Vec<String>, ProjectionError> {
        // A run's state is carried by its last event in the batch; after
        // `Completed` only cleanup and reporting follow, which leave its
        // results as they were.
        let mut states = HashMap::new();
        for step in steps {
            if let Some(state) = step.run.as_ref().and_then(|f| f.state.as_ref()) {
                states.insert(step.event.stream_id.as_str(), state.clone());
            }
        }
        let mut changed = Vec::new();
        for step in steps {
            let Some(folded) = &step.run else { continue };
            if !matches!(folded.event, RunEvent::Completed(_)) {
                continue;
            }
            let Some(run) = states
                .get(step.event.stream_id.as_str())
                .and_then(|s| s.run.as_ref())
            else {
                continue;
            };
            let here = comparison::observe(&run.info.tests, &run.results);
            let (reference, note) = reference(tx, &run.info).await?;
            let (kind, reference) = match reference {
                Some((kind, candidate)) => (Some(kind), Some(candidate)),
                None => (None, None),
            };
            let reference_observations: Option<Observations> = match &reference {
                Some(c) => Some(serde_json::from_str(&c.observations).map_err(|e| {
                    ProjectionError::Decode {
                        position: step.event.position,
                        message: format!("the stored observations of run {}: {e}", c.run_id),
                    }
                })?),
                None => None,
            };
            let counts =
                comparison::count(&comparison::compare(&here, reference_observations.as_ref()));
            let count =
                |class: Class| i32::try_from(*counts.get(&class).unwrap_or(&0)).unwrap_or(i32::MAX);
            let pushed_branch = match &run.info.trigger {
                Trigger::Push { branch } => Some(branch.as_str()),
                _ => None,
            };
            let observations =
                serde_json::to_string(&here).map_err(|e| ProjectionError::Decode {
                    position: step.event.position,
                    message: format!("observations: {e}"),
                })?;
            let run_id = run.info.id.to_string();
            on_tx!(&mut *tx, c => sqlx::query(
                "INSERT INTO run_comparisons (run_id, commit_id, position, repository, platform,
                    commit_sha, pushed_branch, observations, reference_run, reference_kind,
                    reference_commit, reference_note, broken, failing_differently, fixed,
                    failing_identically, new_tests, no_reference, unchanged_pass)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                 ON CONFLICT (run_id) DO NOTHING")
                .bind(&run_id)
                .bind(step.event.commit)
                .bind(step.event.position)
                .bind(&run.info.repository)
                .bind(run.info.platform.as_str())
                .bind(&run.info.commit_sha)
                .bind(pushed_branch)
                .bind(&observations)
                .bind(reference.as_ref().map(|c| c.run_id.as_str()))
                .bind(kind.as_ref().map(ReferenceKind::as_str))
                .bind(reference.as_ref().map(|c| c.commit_sha.as_str()))
                .bind(&note)
                .bind(count(Class::Broken))
                .bind(count(Class::FailingDifferently))
                .bind(count(Class::Fixed))
                .bind(count(Class::FailingIdentically))
                .bind(count(Class::New))
                .bind(count(Class::NoReference))
                .bind(count(Class::UnchangedPass))
                .execute(c)
                .await?
                .rows_affected());
            changed.push(run_id);
        }
        Ok(changed)
    }
}
