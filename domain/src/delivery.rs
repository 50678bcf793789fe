//! What the platform did with each GitHub webhook delivery (stream
//! `delivery-<id>`), and the builds GitHub reported finished (stream
//! `build-<owner>/<repo>@<sha>`).
//!
//! A delivery is recorded last, after everything it caused: a redelivery of a
//! recorded one is answered from the record, and one interrupted half-way is
//! simply handled again (each step is idempotent).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::EventSchema;
use crate::context::Context;
use crate::ids::RunId;

pub fn stream(delivery_id: &str) -> String {
    format!("delivery-{delivery_id}")
}

pub fn build_stream(repository: &str, sha: &str) -> String {
    format!("build-{}@{sha}", repository.to_ascii_lowercase())
}

/// What a delivery led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Runs queued (or found queued already); older runs superseded.
    Queued {
        runs: Vec<RunId>,
        superseded: Vec<RunId>,
    },
    Cancelled {
        runs: Vec<RunId>,
    },
    BuildRecorded,
    Pong,
    Ignored {
        reason: String,
    },
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum DeliveryEvent {
    DeliveryHandled {
        at: DateTime<Utc>,
        event: String,
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        repository: Option<String>,
        #[serde(default)]
        sender: Option<String>,
        outcome: DeliveryOutcome,
    },
}

impl EventSchema for DeliveryEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordDelivery {
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub sender: Option<String>,
    pub outcome: DeliveryOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery already handled")]
pub struct AlreadyHandled;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryState {
    pub outcome: Option<DeliveryOutcome>,
}

impl Aggregate for DeliveryState {
    type Event = DeliveryEvent;
    type Command = RecordDelivery;
    type Rejection = AlreadyHandled;

    fn apply(mut self, event: &DeliveryEvent) -> Self {
        let DeliveryEvent::DeliveryHandled { outcome, .. } = event;
        self.outcome = Some(outcome.clone());
        self
    }

    fn decide(
        &self,
        c: &RecordDelivery,
        ctx: &Context,
    ) -> Result<Vec<DeliveryEvent>, AlreadyHandled> {
        if self.outcome.is_some() {
            return Err(AlreadyHandled);
        }
        Ok(vec![DeliveryEvent::DeliveryHandled {
            at: ctx.now,
            event: c.event.clone(),
            action: c.action.clone(),
            repository: c.repository.clone(),
            sender: c.sender.clone(),
            outcome: c.outcome.clone(),
        }])
    }
}

/// A GitHub Actions workflow run finished for a commit.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum BuildEvent {
    BuildFinished {
        at: DateTime<Utc>,
        repository: String,
        commit_sha: String,
        workflow_run_id: u64,
        workflow: String,
        /// success, failure, cancelled, …, as GitHub says.
        conclusion: String,
        #[serde(default)]
        branch: Option<String>,
    },
}

impl EventSchema for BuildEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordBuild {
    pub repository: String,
    pub commit_sha: String,
    pub workflow_run_id: u64,
    pub workflow: String,
    pub conclusion: String,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow run {0} is already recorded")]
pub struct BuildAlreadyRecorded(pub u64);

/// The finished workflow runs of one commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildState {
    pub finished: Vec<(u64, String, String)>,
}

impl Aggregate for BuildState {
    type Event = BuildEvent;
    type Command = RecordBuild;
    type Rejection = BuildAlreadyRecorded;

    fn apply(mut self, event: &BuildEvent) -> Self {
        let BuildEvent::BuildFinished {
            workflow_run_id,
            workflow,
            conclusion,
            ..
        } = event;
        self.finished
            .push((*workflow_run_id, workflow.clone(), conclusion.clone()));
        self
    }

    fn decide(
        &self,
        c: &RecordBuild,
        ctx: &Context,
    ) -> Result<Vec<BuildEvent>, BuildAlreadyRecorded> {
        if self
            .finished
            .iter()
            .any(|(id, _, _)| *id == c.workflow_run_id)
        {
            return Err(BuildAlreadyRecorded(c.workflow_run_id));
        }
        Ok(vec![BuildEvent::BuildFinished {
            at: ctx.now,
            repository: c.repository.clone(),
            commit_sha: c.commit_sha.clone(),
            workflow_run_id: c.workflow_run_id,
            workflow: c.workflow.clone(),
            conclusion: c.conclusion.clone(),
            branch: c.branch.clone(),
        }])
    }
}
