//! What every aggregate's `decide` may see of the world: the time, and the
//! limits in force. Passed in, never read from a clock, so decisions replay.

use chrono::{DateTime, Utc};

use crate::policy::Policy;

/// The world as `decide` may see it: the time, and the limits in force.
#[derive(Debug, Clone)]
pub struct Context {
    pub now: DateTime<Utc>,
    pub policy: Policy,
}
