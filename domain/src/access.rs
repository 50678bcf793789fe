//! Who may use the platform (stream `access`): operators' API tokens made and
//! revoked. The tokens themselves (the secret's hash, the scopes a request is
//! checked against) stay in their table; these events are the record an
//! auditor reads of who changed them, and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::EventSchema;

pub const STREAM: &str = "access";

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum AccessEvent {
    TokenCreated {
        at: DateTime<Utc>,
        /// Who the token is for (the actor of what it does).
        name: String,
        scopes: Vec<String>,
    },
    TokenRevoked {
        at: DateTime<Utc>,
        name: String,
    },
}

impl EventSchema for AccessEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}
