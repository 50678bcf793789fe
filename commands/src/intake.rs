//! Turning a GitHub delivery into runs, across the streams it touches.
//!
//! Everything a delivery causes (the pull request's new head, the runs it
//! queues, the runs it supersedes or cancels, the record of the delivery
//! itself) is appended in one transaction, so a delivery is handled entirely
//! or not at all. Event ids derive from the delivery id, so the same delivery
//! handled twice at once lands once; a redelivery is answered from the record.

use std::collections::HashMap;
use std::sync::Arc;

use sp_domain::blocklist::{self, Blocklist};
use sp_domain::delivery::{
    self, BuildAlreadyRecorded, BuildState, DeliveryOutcome, DeliveryState, RecordDelivery,
};
use sp_domain::intake::{GithubEvent, IntakeConfig, Plan, PullRequestDelivery, plan};
use sp_domain::pull_request::{
    self, PlannedRun, PullRequestCommand, PullRequestRejection, PullRequestState,
};
use sp_domain::{Ancestry, Policy, QueueRun, Rejection, RunCommand, RunId, RunState, Trigger};
use sp_eventstore::{EventStore, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::catalogue::Catalogues;
use crate::{Clock, CommandError, Envelope, Handler, Loaded, Prepared, UnitOfWork};

/// The part of a delivery's headers and payload that identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryInfo {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub sender: Option<String>,
}

/// What the intake answers GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub outcome: DeliveryOutcome,
    /// The delivery had been handled before; nothing new was recorded.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct IntakeError {
    pub step: &'static str,
    pub message: String,
    pub kind: IntakeFailure,
}

/// Whether a delivery that could not be recorded is worth sending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeFailure {
    /// The store did not answer or lost a race repeatedly: worth a retry.
    Transient,
    /// The delivery itself cannot be recorded (the domain or the store
    /// refuses what it says): sending it again gives the same answer.
    Refused,
    /// Our fault (an unreadable stream, a broken rule).
    Internal,
}

impl From<IntakeError> for crate::Error {
    fn from(e: IntakeError) -> Self {
        match e.kind {
            IntakeFailure::Transient => crate::Error::unavailable(format!(
                "could not record the delivery ({}: {}); redeliver it",
                e.step, e.message
            )),
            IntakeFailure::Refused => {
                crate::Error::invalid(format!("the delivery is refused: {e}"))
            }
            IntakeFailure::Internal => crate::Error::internal(e.to_string()),
        }
    }
}

impl IntakeFailure {
    fn of_store(e: &StoreError) -> Self {
        if e.is_transient() {
            IntakeFailure::Transient
        } else if matches!(e, StoreError::Invalid(_)) {
            IntakeFailure::Refused
        } else {
            IntakeFailure::Internal
        }
    }
}

fn failed<R: std::error::Error>(step: &'static str) -> impl Fn(CommandError<R>) -> IntakeError {
    move |e| IntakeError {
        step,
        kind: match &e {
            CommandError::Rejected(_) => IntakeFailure::Refused,
            CommandError::Contended { .. } => IntakeFailure::Transient,
            CommandError::Store(store) => IntakeFailure::of_store(store),
            CommandError::Corrupt { .. } => IntakeFailure::Internal,
        },
        message: e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct Intake {
    runs: Handler<RunState>,
    pull_requests: Handler<PullRequestState>,
    deliveries: Handler<DeliveryState>,
    builds: Handler<BuildState>,
    config: Arc<IntakeConfig>,
    catalogues: Catalogues,
}

const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6a1d_0f3b_92c4_4d7e_a8b5_3c2e_19f0_d4a7);

impl Intake {
    pub fn new(
        store: Arc<dyn EventStore>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        config: IntakeConfig,
        catalogues: Catalogues,
    ) -> Self {
        Intake {
            runs: Handler::new(store.clone(), policy.clone(), clock.clone()),
            pull_requests: Handler::new(store.clone(), policy.clone(), clock.clone()),
            deliveries: Handler::new(store.clone(), policy.clone(), clock.clone()),
            builds: Handler::new(store, policy, clock),
            config: Arc::new(config),
            catalogues,
        }
    }

    /// Handle one delivery: everything it causes is recorded, in one
    /// transaction, before this returns.
    pub async fn handle(
        &self,
        info: &DeliveryInfo,
        event: &GithubEvent,
    ) -> Result<Receipt, IntakeError> {
        for _ in 0..ATTEMPTS {
            match self.attempt(info, event).await {
                Ok(receipt) => return Ok(receipt),
                Err(Attempt::Retry) => continue,
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(IntakeError {
            step: "record the delivery",
            message: format!("the streams it touches kept changing ({ATTEMPTS} attempts)"),
            kind: IntakeFailure::Transient,
        })
    }

    async fn attempt(&self, info: &DeliveryInfo, event: &GithubEvent) -> Result<Receipt, Attempt> {
        // Everything known up front is read in one round trip: the delivery's
        // record, the blocked users and, for a pull request, its heads.
        let stream = delivery::stream(&info.id);
        let pr_stream = match event {
            GithubEvent::PullRequest(pr) => Some(pull_request::stream(&pr.repository, pr.number)),
            _ => None,
        };
        let mut streams = vec![stream.clone(), blocklist::STREAM.to_string()];
        streams.extend(pr_stream.clone());
        let read = self.read(&streams).await?;
        let recorded = Handler::<DeliveryState>::fold(&stream, &read[0])
            .map_err(failed("read the delivery"))?;
        if let Some(outcome) = recorded.state.outcome.clone() {
            return Ok(Receipt {
                outcome,
                duplicate: true,
            });
        }
        let blocklist = Handler::<Blocklist>::fold(blocklist::STREAM, &read[1])
            .map_err(failed("read the blocked users"))?
            .state;
        let pull_request = match &pr_stream {
            Some(s) => Some(
                Handler::<PullRequestState>::fold(s, read.get(2).map_or(&[][..], Vec::as_slice))
                    .map_err(failed("read the pull request"))?,
            ),
            None => None,
        };

        let ctx = DeliveryContext::new(info);
        let mut work = UnitOfWork::default();
        let outcome = match plan(event, &self.config, &blocklist) {
            Plan::Pong => DeliveryOutcome::Pong,
            Plan::Ignore(reason) => DeliveryOutcome::Ignored { reason },
            Plan::QueuePush {
                repository,
                commit_sha,
                branch,
                ancestry,
                runs,
                priority,
            } => {
                let run_ids: Vec<RunId> = runs.iter().map(|r| r.run_id).collect();
                let mut states = self.read_runs(&run_ids).await?;
                let new = NewRuns {
                    repository: &repository,
                    commit_sha: &commit_sha,
                    trigger: Trigger::Push { branch },
                    ancestry,
                    priority,
                    runs: &runs,
                };
                self.queue(&mut work, &ctx, &mut states, &new).await?;
                DeliveryOutcome::Queued {
                    runs: run_ids,
                    superseded: vec![],
                }
            }
            Plan::ObservePullRequestHead { delivery, priority } => {
                let loaded = pull_request.unwrap_or_default();
                self.pull_request_head(&mut work, &ctx, loaded, &delivery, priority)
                    .await?
            }
            Plan::ClosePullRequest(delivery) => {
                let loaded = pull_request.unwrap_or_default();
                self.close_pull_request(&mut work, &ctx, loaded, &delivery)
                    .await?
            }
            Plan::Rerun {
                repository,
                commit_sha,
                of,
                requested_by,
            } => {
                self.rerun(&mut work, &ctx, &repository, &commit_sha, of, &requested_by)
                    .await?
            }
            Plan::RecordBuild(build) => {
                let stream = delivery::build_stream(&build.repository, &build.commit_sha);
                match self
                    .builds
                    .prepare(&stream, &build, &ctx.envelope("build"))
                    .await
                {
                    Ok(prepared) => {
                        work.add(prepared);
                    }
                    Err(CommandError::Rejected(BuildAlreadyRecorded(_))) => {}
                    Err(e) => return Err(failed("record the build")(e).into()),
                }
                DeliveryOutcome::BuildRecorded
            }
        };
        let record = RecordDelivery {
            event: info.event.clone(),
            action: info.action.clone(),
            repository: info.repository.clone(),
            sender: info.sender.clone(),
            outcome: outcome.clone(),
        };
        match self
            .deliveries
            .prepare_loaded(&stream, recorded, &record, &ctx.envelope("delivery"))
        {
            Ok(prepared) => {
                work.add(prepared);
            }
            // Handled meanwhile by another request or replica: the next
            // attempt answers from its record.
            Err(CommandError::Rejected(delivery::AlreadyHandled)) => return Err(Attempt::Retry),
            Err(e) => return Err(failed("record the delivery")(e).into()),
        }
        match work.commit(&**self.runs.store()).await {
            Ok(already) => Ok(Receipt {
                outcome,
                duplicate: already,
            }),
            Err(StoreError::Conflict { .. }) => Err(Attempt::Retry),
            Err(e) => Err(Attempt::Failed(IntakeError {
                step: "record the delivery",
                kind: IntakeFailure::of_store(&e),
                message: e.to_string(),
            })),
        }
    }

    async fn read(&self, streams: &[String]) -> Result<Vec<Vec<RecordedEvent>>, Attempt> {
        self.runs.store().read_streams(streams).await.map_err(|e| {
            Attempt::Failed(IntakeError {
                step: "read the streams the delivery touches",
                kind: IntakeFailure::of_store(&e),
                message: e.to_string(),
            })
        })
    }

    /// The runs a delivery touches, read in one round trip.
    async fn read_runs(&self, ids: &[RunId]) -> Result<HashMap<RunId, Loaded<RunState>>, Attempt> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let streams: Vec<String> = ids.iter().map(RunId::stream).collect();
        let read = self.read(&streams).await?;
        let mut runs = HashMap::with_capacity(ids.len());
        for ((id, stream), events) in ids.iter().zip(&streams).zip(&read) {
            let loaded = Handler::<RunState>::fold(stream, events).map_err(failed("read a run"))?;
            runs.insert(*id, loaded);
        }
        Ok(runs)
    }

    /// Decide `command` for a run read by [`Intake::read_runs`].
    fn prepare_run(
        &self,
        states: &mut HashMap<RunId, Loaded<RunState>>,
        run: RunId,
        command: &RunCommand,
        envelope: &Envelope,
    ) -> Result<Prepared<RunState>, CommandError<Rejection>> {
        let loaded = states.remove(&run).unwrap_or_default();
        self.runs
            .prepare_loaded(&run.stream(), loaded, command, envelope)
    }

    async fn queue(
        &self,
        work: &mut UnitOfWork,
        ctx: &DeliveryContext,
        states: &mut HashMap<RunId, Loaded<RunState>>,
        new: &NewRuns<'_>,
    ) -> Result<(), Attempt> {
        let catalogue = self.catalogues.current().await.map_err(|e| IntakeError {
            step: "read the catalogue",
            kind: if e.kind == crate::ErrorKind::Internal {
                IntakeFailure::Internal
            } else {
                IntakeFailure::Transient
            },
            message: e.to_string(),
        })?;
        for run in new.runs {
            let command = RunCommand::Queue(QueueRun {
                run_id: run.run_id,
                repository: new.repository.to_string(),
                commit_sha: new.commit_sha.to_string(),
                platform: run.platform.clone(),
                trigger: new.trigger.clone(),
                priority: new.priority,
                tests: catalogue.state.tests_for(run.platform.as_str()),
                delivery_id: Some(ctx.delivery_id.clone()),
                ancestry: new.ancestry.clone(),
            });
            let envelope = ctx.envelope(&format!("queue:{}", run.run_id));
            match self.prepare_run(states, run.run_id, &command, &envelope) {
                Ok(prepared) => {
                    work.add(prepared);
                }
                // Queued by an earlier delivery of the same commit.
                Err(CommandError::Rejected(Rejection::AlreadyQueued)) => {}
                Err(e) => return Err(failed("queue a run")(e).into()),
            }
        }
        Ok(())
    }

    /// "Re-run" pressed on GitHub: a new run of the commit on the platform
    /// of the run named (a check run's), or on every platform (a check
    /// suite's), recorded with the GitHub user as who asked.
    async fn rerun(
        &self,
        work: &mut UnitOfWork,
        ctx: &DeliveryContext,
        repository: &str,
        commit_sha: &str,
        of: Option<RunId>,
        requested_by: &str,
    ) -> Result<DeliveryOutcome, Attempt> {
        let (platforms, ancestry, priority) = match of {
            Some(id) => {
                let states = self.read_runs(&[id]).await?;
                let earlier = states.get(&id).and_then(|l| l.state.run.as_ref());
                match earlier {
                    Some(run)
                        if run.info.repository.eq_ignore_ascii_case(repository)
                            && run.info.commit_sha == commit_sha =>
                    {
                        (
                            vec![run.info.platform.clone()],
                            run.info.ancestry.clone(),
                            run.info.priority,
                        )
                    }
                    _ => {
                        return Ok(DeliveryOutcome::Ignored {
                            reason: format!(
                                "no run {id} of {repository}@{commit_sha} to run again"
                            ),
                        });
                    }
                }
            }
            None => (
                self.config.platforms.clone(),
                Ancestry::default(),
                self.config.push_priority,
            ),
        };
        let runs: Vec<PlannedRun> = platforms
            .into_iter()
            .map(|platform| PlannedRun {
                run_id: RunId::derived(&format!("rerun:{}:{platform}", ctx.delivery_id)),
                platform,
            })
            .collect();
        let run_ids: Vec<RunId> = runs.iter().map(|r| r.run_id).collect();
        let mut states = self.read_runs(&run_ids).await?;
        let new = NewRuns {
            repository,
            commit_sha,
            trigger: Trigger::Manual {
                requested_by: format!("github:{requested_by}"),
                note: Some("re-run requested on GitHub".into()),
            },
            ancestry,
            priority,
            runs: &runs,
        };
        self.queue(work, ctx, &mut states, &new).await?;
        Ok(DeliveryOutcome::Queued {
            runs: run_ids,
            superseded: vec![],
        })
    }

    async fn pull_request_head(
        &self,
        work: &mut UnitOfWork,
        ctx: &DeliveryContext,
        loaded: Loaded<PullRequestState>,
        pr: &PullRequestDelivery,
        priority: i32,
    ) -> Result<DeliveryOutcome, Attempt> {
        let stream = pull_request::stream(&pr.repository, pr.number);
        let command = PullRequestCommand::ObserveHead {
            repository: pr.repository.clone(),
            number: pr.number,
            sha: pr.head_sha.clone(),
            head_ref: pr.head_ref.clone(),
            updated_at: pr.updated_at,
            author: pr.author.clone(),
            platforms: self.config.platforms.clone(),
        };
        let (state, new_head) =
            match self
                .pull_requests
                .prepare_loaded(&stream, loaded, &command, &ctx.envelope("pr"))
            {
                Ok(prepared) => {
                    let outcome = work.add(prepared);
                    (outcome.state, !outcome.events.is_empty())
                }
                Err(CommandError::Rejected(reason @ PullRequestRejection::Stale { .. })) => {
                    return Ok(DeliveryOutcome::Ignored {
                        reason: format!("stale delivery: {reason}"),
                    });
                }
                Err(e) => return Err(failed("record the pull request head")(e).into()),
            };
        let Some(head) = state.current() else {
            return Err(Attempt::Failed(IntakeError {
                step: "record the pull request head",
                message: "no head after observing one".into(),
                kind: IntakeFailure::Internal,
            }));
        };
        let older: Vec<(RunId, RunId)> = head
            .runs
            .iter()
            .flat_map(|run| {
                state
                    .older_runs(&run.platform)
                    .into_iter()
                    .map(|old| (run.run_id, old))
            })
            .collect();
        // A head observed now names runs that cannot exist yet (their ids
        // hold the head's sequence number; a concurrent writer of the same
        // head conflicts on the pull request's stream), so only the runs it
        // supersedes are read: a pull request's first head needs no read.
        let mut touched: Vec<RunId> = if new_head {
            Vec::new()
        } else {
            head.runs.iter().map(|r| r.run_id).collect()
        };
        touched.extend(older.iter().map(|(_, old)| *old));
        let mut states = self.read_runs(&touched).await?;

        // The new runs come first in the transaction, so they exist before any
        // older run names them as its successor.
        let new = NewRuns {
            repository: &pr.repository,
            commit_sha: &head.sha,
            trigger: Trigger::PullRequest {
                number: pr.number,
                head_ref: head.head_ref.clone(),
            },
            ancestry: pr.ancestry(),
            priority,
            runs: &head.runs,
        };
        self.queue(work, ctx, &mut states, &new).await?;
        let mut superseded = Vec::new();
        for (by, old) in older {
            let command = RunCommand::Supersede {
                by,
                reason: format!(
                    "pull request #{} has a newer commit ({})",
                    pr.number,
                    &head.sha[..head.sha.len().min(10)]
                ),
            };
            let envelope = ctx.envelope(&format!("supersede:{old}"));
            match self.prepare_run(&mut states, old, &command, &envelope) {
                Ok(prepared) => {
                    if !work.add(prepared).events.is_empty() {
                        superseded.push(old);
                    }
                }
                Err(CommandError::Rejected(
                    Rejection::RunFinal { .. } | Rejection::RunNotFound,
                )) => {}
                Err(e) => return Err(failed("supersede an older run")(e).into()),
            }
        }
        Ok(DeliveryOutcome::Queued {
            runs: head.runs.iter().map(|r| r.run_id).collect(),
            superseded,
        })
    }

    async fn close_pull_request(
        &self,
        work: &mut UnitOfWork,
        ctx: &DeliveryContext,
        loaded: Loaded<PullRequestState>,
        pr: &PullRequestDelivery,
    ) -> Result<DeliveryOutcome, Attempt> {
        let stream = pull_request::stream(&pr.repository, pr.number);
        let command = PullRequestCommand::Close {
            updated_at: pr.updated_at,
        };
        let state =
            match self
                .pull_requests
                .prepare_loaded(&stream, loaded, &command, &ctx.envelope("pr"))
            {
                Ok(prepared) => work.add(prepared).state,
                Err(CommandError::Rejected(reason)) => {
                    return Ok(DeliveryOutcome::Ignored {
                        reason: format!("close not applied: {reason}"),
                    });
                }
                Err(e) => return Err(failed("record the pull request closing")(e).into()),
            };
        let runs = state.all_runs();
        let mut states = self.read_runs(&runs).await?;
        let mut cancelled = Vec::new();
        for run in runs {
            let command = RunCommand::Cancel {
                reason: "pull request closed".into(),
            };
            let envelope = ctx.envelope(&format!("cancel:{run}"));
            match self.prepare_run(&mut states, run, &command, &envelope) {
                Ok(prepared) => {
                    if !work.add(prepared).events.is_empty() {
                        cancelled.push(run);
                    }
                }
                Err(CommandError::Rejected(
                    Rejection::RunFinal { .. } | Rejection::RunNotFound,
                )) => {}
                Err(e) => return Err(failed("cancel a run")(e).into()),
            }
        }
        Ok(DeliveryOutcome::Cancelled { runs: cancelled })
    }
}

/// Runs to queue for one commit.
struct NewRuns<'a> {
    repository: &'a str,
    commit_sha: &'a str,
    trigger: Trigger,
    ancestry: Ancestry,
    priority: i32,
    runs: &'a [PlannedRun],
}

/// How many times a delivery is decided again when a stream it touches
/// changed under it.
const ATTEMPTS: usize = 8;

enum Attempt {
    Retry,
    Failed(IntakeError),
}

impl From<IntakeError> for Attempt {
    fn from(e: IntakeError) -> Self {
        Attempt::Failed(e)
    }
}

/// Who and what caused the events of one delivery.
struct DeliveryContext {
    delivery_id: String,
    actor: String,
    correlation_id: Uuid,
}

impl DeliveryContext {
    fn new(info: &DeliveryInfo) -> Self {
        DeliveryContext {
            delivery_id: info.id.clone(),
            actor: format!("github:{}", info.sender.as_deref().unwrap_or("unknown")),
            // Every event of one delivery shares a correlation id, the same on
            // every replica and every redelivery.
            correlation_id: Uuid::new_v5(&DELIVERY_NAMESPACE, info.id.as_bytes()),
        }
    }

    /// The envelope of one step; its idempotency key makes the step's events
    /// the same ones however often the delivery is handled.
    fn envelope(&self, step: &str) -> Envelope {
        Envelope::new(self.actor.clone())
            .correlated(self.correlation_id)
            .idempotent(format!("delivery:{}:{step}", self.delivery_id))
    }
}
