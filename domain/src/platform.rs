//! A platform's maintenance state (stream `platform-<name>`): while paused, the
//! scheduler starts no VMs for it; queued runs wait, bounded by their deadline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::EventSchema;
use crate::context::Context;
use crate::ids::Platform;

pub fn stream(platform: &Platform) -> String {
    format!("platform-{platform}")
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum PlatformEvent {
    PlatformPaused(MaintenanceChange),
    PlatformResumed(MaintenanceChange),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceChange {
    pub at: DateTime<Utc>,
    pub platform: Platform,
    pub note: String,
}

impl EventSchema for PlatformEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlatformCommand {
    Pause { platform: Platform, note: String },
    Resume { platform: Platform, note: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformRejection {
    #[error("a note saying why is required")]
    NoteRequired,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformState {
    /// The note of the pause in force, if any.
    pub paused: Option<String>,
}

impl Aggregate for PlatformState {
    type Event = PlatformEvent;
    type Command = PlatformCommand;
    type Rejection = PlatformRejection;

    fn apply(mut self, event: &PlatformEvent) -> Self {
        self.paused = match event {
            PlatformEvent::PlatformPaused(c) => Some(c.note.clone()),
            PlatformEvent::PlatformResumed(_) => None,
        };
        self
    }

    /// Pausing a paused platform (or resuming a running one) is nothing new.
    fn decide(
        &self,
        command: &PlatformCommand,
        ctx: &Context,
    ) -> Result<Vec<PlatformEvent>, PlatformRejection> {
        let (platform, note, pause) = match command {
            PlatformCommand::Pause { platform, note } => (platform, note, true),
            PlatformCommand::Resume { platform, note } => (platform, note, false),
        };
        if note.trim().is_empty() {
            return Err(PlatformRejection::NoteRequired);
        }
        if self.paused.is_some() == pause {
            return Ok(vec![]);
        }
        let change = MaintenanceChange {
            at: ctx.now,
            platform: platform.clone(),
            note: note.clone(),
        };
        Ok(vec![if pause {
            PlatformEvent::PlatformPaused(change)
        } else {
            PlatformEvent::PlatformResumed(change)
        }])
    }
}
