//! GitHub users whose pushes and pull requests queue nothing (stream `blocked-users`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::EventSchema;
use crate::context::Context;

pub const STREAM: &str = "blocked-users";

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum BlocklistEvent {
    UserBlocked {
        at: DateTime<Utc>,
        login: String,
        reason: String,
    },
    UserUnblocked {
        at: DateTime<Utc>,
        login: String,
    },
}

impl EventSchema for BlocklistEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlocklistCommand {
    Block { login: String, reason: String },
    Unblock { login: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlocklistRejection {
    #[error("{0:?} is not a GitHub login")]
    InvalidLogin(String),
    #[error("a reason is required")]
    ReasonRequired,
}

/// Blocked logins (lower-case, as GitHub compares them) and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocklist {
    pub blocked: BTreeMap<String, String>,
}

impl Blocklist {
    pub fn reason(&self, login: &str) -> Option<&str> {
        self.blocked
            .get(&login.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// GitHub logins: letters, digits and single dashes, at most 39 characters.
fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
}

impl Aggregate for Blocklist {
    type Event = BlocklistEvent;
    type Command = BlocklistCommand;
    type Rejection = BlocklistRejection;

    fn apply(mut self, event: &BlocklistEvent) -> Self {
        match event {
            BlocklistEvent::UserBlocked { login, reason, .. } => {
                self.blocked.insert(login.clone(), reason.clone());
            }
            BlocklistEvent::UserUnblocked { login, .. } => {
                self.blocked.remove(login);
            }
        }
        self
    }

    fn decide(
        &self,
        command: &BlocklistCommand,
        ctx: &Context,
    ) -> Result<Vec<BlocklistEvent>, BlocklistRejection> {
        let (BlocklistCommand::Block { login, .. } | BlocklistCommand::Unblock { login }) = command;
        if !valid_login(login) {
            return Err(BlocklistRejection::InvalidLogin(login.clone()));
        }
        let login = login.to_ascii_lowercase();
        match command {
            BlocklistCommand::Block { reason, .. } => {
                if reason.trim().is_empty() {
                    return Err(BlocklistRejection::ReasonRequired);
                }
                if self.blocked.get(&login) == Some(reason) {
                    return Ok(vec![]);
                }
                Ok(vec![BlocklistEvent::UserBlocked {
                    at: ctx.now,
                    login,
                    reason: reason.clone(),
                }])
            }
            BlocklistCommand::Unblock { .. } => {
                if !self.blocked.contains_key(&login) {
                    return Ok(vec![]);
                }
                Ok(vec![BlocklistEvent::UserUnblocked { at: ctx.now, login }])
            }
        }
    }
}
