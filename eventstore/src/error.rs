//! Failures of the store, kept apart from domain rejections: a conflict is
//! retried by reloading, everything else is reported.

use uuid::Uuid;

use crate::model::ExpectedVersion;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended first.
    #[error("stream {stream} is at version {actual}, but the append expected {expected}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// An event id is already in the log, but not as part of this same batch.
    #[error("event id {event_id} was already used for another event (stream {stream})")]
    EventIdReused { event_id: Uuid, stream: String },
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error("stored event at position {position} is unreadable: {message}")]
    Corrupt { position: i64, message: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Whether a database error is a unique-constraint violation, and on which constraint.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Some(db.constraint().unwrap_or(db.message()).to_string())
        }
        _ => None,
    }
}
