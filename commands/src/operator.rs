//! What operators may do: enqueue, cancel and retry runs, pause platforms,
//! block users. Every command records its actor.

use std::sync::Arc;

use sp_domain::blocklist::{self, Blocklist, BlocklistCommand};
use sp_domain::platform::{self, PlatformCommand, PlatformState};
use sp_domain::{Platform, Policy, QueueRun, Rejection, RunCommand, RunId, RunState, Trigger};
use sp_eventstore::{EventStore, StoreError};
use uuid::Uuid;

use crate::catalogue::Catalogues;
use crate::{Clock, CommandError, Envelope, Handler, Loaded, UnitOfWork};

/// Why an operator's command did not happen, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The input is wrong: fix it.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// It exists already (a sample with the same content).
    #[error("{0}")]
    Conflict(String),
    /// The domain refuses in the current state (e.g. the run is final).
    #[error("{0}")]
    Refused(String),
    /// The database did not answer or kept changing: try again.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl OperatorError {
    /// A store failure: worth a retry, an input the store cannot take, or ours.
    pub fn of_store(e: StoreError) -> Self {
        match e {
            e if e.is_transient() => OperatorError::Unavailable(e.to_string()),
            StoreError::Invalid(m) => OperatorError::Invalid(m),
            e => OperatorError::Internal(e.to_string()),
        }
    }
}

impl<R: std::error::Error + 'static> From<CommandError<R>> for OperatorError {
    fn from(e: CommandError<R>) -> Self {
        match e {
            CommandError::Rejected(r) => OperatorError::Refused(r.to_string()),
            CommandError::Contended { .. } => OperatorError::Unavailable(e.to_string()),
            CommandError::Store(store) => OperatorError::of_store(store),
            CommandError::Corrupt { .. } => OperatorError::Internal(e.to_string()),
        }
    }
}

fn run_error(e: CommandError<Rejection>) -> OperatorError {
    match e {
        CommandError::Rejected(Rejection::RunNotFound) => {
            OperatorError::NotFound("no such run".into())
        }
        CommandError::Rejected(Rejection::Invalid(msg)) => OperatorError::Invalid(msg),
        other => other.into(),
    }
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

    fn platform(&self, name: &str) -> Result<Platform, OperatorError> {
        let platform = Platform::new(name).map_err(|e| OperatorError::Invalid(e.to_string()))?;
        if !self.known_platforms.contains(&platform) {
            let known: Vec<&str> = self.known_platforms.iter().map(Platform::as_str).collect();
            return Err(OperatorError::Invalid(format!(
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
    ) -> Result<Vec<RunId>, OperatorError> {
        let platforms = if platforms.is_empty() {
            self.known_platforms.to_vec()
        } else {
            platforms
                .iter()
                .map(|p| self.platform(p))
                .collect::<Result<_, _>>()?
        };
        // One catalogue for all the platforms, and all the runs in one
        // append: the request queues every run or none.
        let catalogue = self.catalogues.current().await?;
        let envelope = Envelope::new(actor);
        let mut work = UnitOfWork::default();
        let mut queued = Vec::new();
        for platform in platforms {
            let run_id = RunId(Uuid::now_v7());
            let command = RunCommand::Queue(QueueRun {
                run_id,
                repository: repository.to_string(),
                commit_sha: commit_sha.to_string(),
                tests: catalogue.state.tests_for(platform.as_str()),
                platform,
                trigger: Trigger::Manual {
                    requested_by: actor.to_string(),
                    note: note.clone(),
                },
                priority: 0,
                delivery_id: None,
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
            .map_err(OperatorError::of_store)?;
        Ok(queued)
    }

    pub async fn cancel(&self, actor: &str, run: RunId, reason: &str) -> Result<(), OperatorError> {
        if reason.trim().is_empty() {
            return Err(OperatorError::Invalid("a reason is required".into()));
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
    ) -> Result<RunId, OperatorError> {
        let loaded = self.runs.load(&run.stream()).await.map_err(run_error)?;
        let Some(original) = loaded.state.run.as_ref() else {
            return Err(OperatorError::NotFound("no such run".into()));
        };
        if !loaded.state.is_final() {
            return Err(OperatorError::Refused(
                "the run has not finished; cancel it first to run it again".into(),
            ));
        }
        let run_id = RunId(Uuid::now_v7());
        let command = RunCommand::Queue(QueueRun {
            run_id,
            repository: original.info.repository.clone(),
            commit_sha: original.info.commit_sha.clone(),
            platform: original.info.platform.clone(),
            trigger: Trigger::Manual {
                requested_by: actor.to_string(),
                note: Some(if current_catalogue {
                    format!("retry of run {run} with the current catalogue")
                } else {
                    format!("retry of run {run}")
                }),
            },
            priority: original.info.priority,
            tests: if current_catalogue {
                self.catalogues.tests_for(&original.info.platform).await?
            } else {
                original.info.tests.clone()
            },
            delivery_id: None,
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
    ) -> Result<bool, OperatorError> {
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
                CommandError::Rejected(r) => OperatorError::Invalid(r.to_string()),
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
    ) -> Result<bool, OperatorError> {
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
                CommandError::Rejected(r) => OperatorError::Invalid(r.to_string()),
                other => other.into(),
            })?;
        Ok(!done.events.is_empty())
    }

    /// The blocked users and why.
    pub async fn blocked_users(&self) -> Result<Vec<(String, String)>, OperatorError> {
        let list = self.blocklist.load(blocklist::STREAM).await?;
        Ok(list.state.blocked.into_iter().collect())
    }
}
