//! What operators may do: enqueue, cancel and retry runs, pause platforms,
//! block users. Every command records its actor.

use std::sync::Arc;

use sp_domain::blocklist::{self, Blocklist, BlocklistCommand};
use sp_domain::platform::{self, PlatformCommand, PlatformState};
use sp_domain::{
    Ancestry, Platform, Policy, QueueRun, RegressionTest, Rejection, RunCommand, RunId, RunState,
    Trigger,
};
use sp_eventstore::EventStore;
use uuid::Uuid;

use crate::catalogue::Catalogues;
use crate::{Clock, CommandError, Envelope, Error, Handler, Loaded, UnitOfWork};

fn run_error(e: CommandError<Rejection>) -> Error {
    match e {
        CommandError::Rejected(Rejection::RunNotFound) => Error::not_found("no such run"),
        CommandError::Rejected(Rejection::Invalid(msg)) => Error::invalid(msg),
        other => other.into(),
    }
}

/// A contributor's run, as they asked for it.
#[derive(Debug, Clone)]
pub struct CustomRun<'a> {
    /// Recorded as the actor: `github:<login>`.
    pub actor: &'a str,
    pub login: &'a str,
    pub repository: &'a str,
    pub commit_sha: &'a str,
    pub platforms: &'a [String],
    pub selection: &'a sp_domain::custom::Selection,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Operator {
    runs: Handler<RunState>,
    platforms: Handler<PlatformState>,
    blocklist: Handler<Blocklist>,
    known_platforms: Arc<Vec<Platform>>,
    catalogues: Catalogues,
}

impl Operator {
    pub fn new(
        store: Arc<dyn EventStore>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        known_platforms: Vec<Platform>,
        catalogues: Catalogues,
    ) -> Self {
        Operator {
            runs: Handler::new(store.clone(), policy.clone(), clock.clone()),
            platforms: Handler::new(store.clone(), policy.clone(), clock.clone()),
            blocklist: Handler::new(store, policy, clock),
            known_platforms: Arc::new(known_platforms),
            catalogues,
        }
    }

    fn platform(&self, name: &str) -> Result<Platform, Error> {
        let platform = Platform::new(name).map_err(|e| Error::invalid(e.to_string()))?;
        if !self.known_platforms.contains(&platform) {
            let known: Vec<&str> = self.known_platforms.iter().map(Platform::as_str).collect();
            return Err(Error::invalid(format!(
                "unknown platform {name:?}; configured: {}",
                known.join(", ")
            )));
        }
        Ok(platform)
    }

    /// Queue a run per platform for a commit (all configured platforms when none given).
    pub async fn enqueue(
        &self,
        actor: &str,
        repository: &str,
        commit_sha: &str,
        platforms: &[String],
        note: Option<String>,
    ) -> Result<Vec<RunId>, Error> {
        let platforms = self.platforms(platforms)?;
        // One catalogue for all the platforms, and all the runs in one
        // append: the request queues every run or none.
        let catalogue = self.catalogues.current().await?;
        let runs = platforms
            .into_iter()
            .map(|platform| (catalogue.state.tests_for(platform.as_str()), platform))
            .collect();
        let trigger = Trigger::Manual {
            requested_by: actor.to_string(),
            note,
        };
        self.queue_all(actor, repository, commit_sha, trigger, runs)
            .await
    }

    /// A contributor's run of a commit of their own repository, with the
    /// tests they chose, on `platforms` (every one when none are named).
    /// `fits(n)` says whether `n` more runs are within their limits, or why not.
    /// Whether the repository is theirs is the caller's to have checked.
    pub async fn enqueue_custom(
        &self,
        custom: CustomRun<'_>,
        fits: impl FnOnce(usize) -> Result<(), String>,
    ) -> Result<Vec<RunId>, Error> {
        let blocklist = self.blocklist.load(blocklist::STREAM).await?;
        if let Some(reason) = blocklist.state.reason(custom.login) {
            return Err(Error::forbidden(format!(
                "{} may not queue runs: blocked ({reason})",
                custom.login
            )));
        }
        let platforms = self.platforms(custom.platforms)?;
        fits(platforms.len()).map_err(Error::refused)?;
        let catalogue = self.catalogues.current().await?;
        let known = |id: &str| catalogue.state.tests.get(id).is_some_and(|t| t.active);
        let mut runs = Vec::new();
        for platform in platforms {
            let available = catalogue.state.tests_for(platform.as_str());
            let tests = custom
                .selection
                .pick(platform.as_str(), &available, known)
                .map_err(Error::invalid)?;
            runs.push((tests, platform));
        }
        let trigger = Trigger::Custom {
            login: custom.login.to_string(),
            note: custom.note,
        };
        self.queue_all(
            custom.actor,
            custom.repository,
            custom.commit_sha,
            trigger,
            runs,
        )
        .await
    }

    /// The platforms named, or every one when none are.
    fn platforms(&self, named: &[String]) -> Result<Vec<Platform>, Error> {
        if named.is_empty() {
            return Ok(self.known_platforms.to_vec());
        }
        named.iter().map(|p| self.platform(p)).collect()
    }

    /// Queue a run per (tests, platform), all in one append.
    async fn queue_all(
        &self,
        actor: &str,
        repository: &str,
        commit_sha: &str,
        trigger: Trigger,
        runs: Vec<(Vec<RegressionTest>, Platform)>,
    ) -> Result<Vec<RunId>, Error> {
        let envelope = Envelope::new(actor);
        let mut work = UnitOfWork::default();
        let mut queued = Vec::new();
        for (tests, platform) in runs {
            let run_id = RunId(Uuid::now_v7());
            let command = RunCommand::Queue(QueueRun {
                run_id,
                repository: repository.to_string(),
                commit_sha: commit_sha.to_string(),
                tests,
                platform,
                trigger: trigger.clone(),
                priority: 0,
                delivery_id: None,
                ancestry: Ancestry::default(),
            });
            // A fresh id: its stream is empty, nothing to read.
            let prepared = self
                .runs
                .prepare_loaded(&run_id.stream(), Loaded::default(), &command, &envelope)
                .map_err(run_error)?;
            work.add(prepared);
            queued.push(run_id);
        }
        work.commit(self.runs.store().as_ref())
            .await
            .map_err(Error::of_store)?;
        Ok(queued)
    }

    pub async fn cancel(&self, actor: &str, run: RunId, reason: &str) -> Result<(), Error> {
        if reason.trim().is_empty() {
            return Err(Error::invalid("a reason is required"));
        }
        let command = RunCommand::Cancel {
            reason: reason.to_string(),
        };
        self.runs
            .execute(&run.stream(), &command, &Envelope::new(actor))
            .await
            .map_err(run_error)?;
        Ok(())
    }

    /// Retrying a finished run queues a *new* run of the same commit and
    /// platform (a run has exactly one final event, so a finished run is
    /// never reopened), with the regression tests it had or, with
    /// `current_catalogue`, those the catalogue has now (after a baseline
    /// was accepted, say).
    pub async fn retry(
        &self,
        actor: &str,
        run: RunId,
        current_catalogue: bool,
    ) -> Result<RunId, Error> {
        let loaded = self.runs.load(&run.stream()).await.map_err(run_error)?;
        let Some(original) = loaded.state.run.as_ref() else {
            return Err(Error::not_found("no such run"));
        };
        if !loaded.state.is_final() {
            return Err(Error::refused(
                "the run has not finished; cancel it first to run it again",
            ));
        }
        if let Trigger::Custom { login, .. } = &original.info.trigger {
            let blocklist = self.blocklist.load(blocklist::STREAM).await?;
            if let Some(reason) = blocklist.state.reason(login) {
                return Err(Error::forbidden(format!(
                    "{login} may not queue runs: blocked ({reason})"
                )));
            }
        }
        let run_id = RunId(Uuid::now_v7());
        let command = RunCommand::Queue(QueueRun {
            run_id,
            repository: original.info.repository.clone(),
            commit_sha: original.info.commit_sha.clone(),
            platform: original.info.platform.clone(),
            trigger: {
                let note = Some(if current_catalogue {
                    format!("retry of run {run} with the current catalogue")
                } else {
                    format!("retry of run {run}")
                });
                // A custom run's retry is custom too: it still tells GitHub
                // nothing.
                match &original.info.trigger {
                    Trigger::Custom { login, .. } => Trigger::Custom {
                        login: login.clone(),
                        note,
                    },
                    _ => Trigger::Manual {
                        requested_by: actor.to_string(),
                        note,
                    },
                }
            },
            priority: original.info.priority,
            tests: if current_catalogue {
                self.catalogues.tests_for(&original.info.platform).await?
            } else {
                original.info.tests.to_vec()
            },
            delivery_id: None,
            ancestry: original.info.ancestry.clone(),
        });
        // A fresh id: its stream is empty, nothing to read.
        self.runs
            .execute_loaded(
                &run_id.stream(),
                Loaded::default(),
                &command,
                &Envelope::new(actor),
            )
            .await
            .map_err(run_error)?;
        Ok(run_id)
    }

    /// Pause (or resume) a platform; returns whether anything changed.
    pub async fn set_paused(
        &self,
        actor: &str,
        platform: &str,
        paused: bool,
        note: &str,
    ) -> Result<bool, Error> {
        let platform = self.platform(platform)?;
        let stream = platform::stream(&platform);
        let command = if paused {
            PlatformCommand::Pause {
                platform,
                note: note.to_string(),
            }
        } else {
            PlatformCommand::Resume {
                platform,
                note: note.to_string(),
            }
        };
        let done = self
            .platforms
            .execute(&stream, &command, &Envelope::new(actor))
            .await
            .map_err(|e| match e {
                CommandError::Rejected(r) => Error::invalid(r.to_string()),
                other => other.into(),
            })?;
        Ok(!done.events.is_empty())
    }

    /// Block (with a reason) or unblock a GitHub user; returns whether anything changed.
    pub async fn set_blocked(
        &self,
        actor: &str,
        login: &str,
        reason: Option<&str>,
    ) -> Result<bool, Error> {
        let command = match reason {
            Some(reason) => BlocklistCommand::Block {
                login: login.to_string(),
                reason: reason.to_string(),
            },
            None => BlocklistCommand::Unblock {
                login: login.to_string(),
            },
        };
        let done = self
            .blocklist
            .execute(blocklist::STREAM, &command, &Envelope::new(actor))
            .await
            .map_err(|e| match e {
                CommandError::Rejected(r) => Error::invalid(r.to_string()),
                other => other.into(),
            })?;
        Ok(!done.events.is_empty())
    }

    /// The blocked users and why.
    pub async fn blocked_users(&self) -> Result<Vec<(String, String)>, Error> {
        let list = self.blocklist.load(blocklist::STREAM).await?;
        Ok(list.state.blocked.into_iter().collect())
    }
}
