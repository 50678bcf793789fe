//! The record of who changed access: a token made or revoked is appended to
//! the `access` stream after its table changed, so the audit log shows it
//! with its actor. The table stays the source of what a token may do.

use sp_domain::access::{AccessEvent, STREAM};
use sp_eventstore::{EventStore, ExpectedVersion, StoreError};

use crate::{Envelope, encode};

/// Append `event` to the `access` stream.
pub async fn record(
    store: &dyn EventStore,
    envelope: &Envelope,
    event: AccessEvent,
) -> Result<(), StoreError> {
    store
        .append(STREAM, ExpectedVersion::Any, &encode(&[event], envelope))
        .await
        .map(|_| ())
}
