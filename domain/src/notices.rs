//! Things the platform noticed that belong to no run (stream `notices`): an
//! orphan VM of an unknown run deleted, a provider that cannot list its VMs, a
//! lease lost. Recorded so that they can be read, not only logged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::EventSchema;
use crate::context::Context;

pub const STREAM: &str = "notices";

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
pub enum NoticeEvent {
    NoticeRecorded {
        at: DateTime<Utc>,
        /// A short machine-readable kind, e.g. `orphan_vm_deleted`.
        kind: String,
        /// What happened, for a person.
        message: String,
    },
}

impl EventSchema for NoticeEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordNotice {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a notice needs a kind and a message")]
pub struct EmptyNotice;

/// Notices keep no state: each is recorded as it comes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notices;

impl Aggregate for Notices {
    type Event = NoticeEvent;
    type Command = RecordNotice;
    type Rejection = EmptyNotice;

    fn apply(self, _: &NoticeEvent) -> Self {
        self
    }

    fn decide(&self, c: &RecordNotice, ctx: &Context) -> Result<Vec<NoticeEvent>, EmptyNotice> {
        if c.kind.trim().is_empty() || c.message.trim().is_empty() {
            return Err(EmptyNotice);
        }
        Ok(vec![NoticeEvent::NoticeRecorded {
            at: ctx.now,
            kind: c.kind.clone(),
            message: c.message.clone(),
        }])
    }
}
