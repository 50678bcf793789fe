//! Events that record what happened without a rule to decide them: a token
//! made or revoked (stream `access`, after its table changed), a file deleted
//! by retention (stream `retention`). Appended as they are, with any
//! expected version: each is a fact, not a decision a race could overturn.

use sp_domain::codec::EventSchema;
use sp_eventstore::{EventStore, ExpectedVersion, StoreError};

use crate::{Envelope, encode};

/// Append `events` to `stream`.
pub async fn record<E: EventSchema>(
    store: &dyn EventStore,
    stream: &str,
    envelope: &Envelope,
    events: &[E],
) -> Result<(), StoreError> {
    store
        .append(stream, ExpectedVersion::Any, &encode(events, envelope))
        .await
        .map(|_| ())
}
