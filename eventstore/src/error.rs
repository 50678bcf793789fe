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
    /// The database cannot be opened as named (a URL of an unknown kind, a
    /// SQLite file or directory that is not there): the same every time.
    #[error("{0}")]
    Unusable(String),
    /// The database server did not take a connection; the message names the
    /// server and its answer (refused, unknown host, bad password).
    #[error("{0}")]
    Unreachable(String),
    /// The append was made under a lease that has moved on: another instance
    /// leads now, and this one must stop.
    #[error("lease {lease} is no longer held with token {token}; another instance leads")]
    Fenced { lease: String, token: i64 },
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

    /// Whether the same request could succeed later: a lost race, a database
    /// that did not answer, a lock or resource shortage. An input the
    /// database refuses (a value it cannot store, a broken constraint) fails
    /// the same way every time, so it is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Conflict { .. } | StoreError::Unreachable(_) => true,
            StoreError::Database(e) => database_error_is_transient(e),
            StoreError::EventIdReused { .. }
            | StoreError::Fenced { .. }
            | StoreError::Invalid(_)
            | StoreError::Unusable(_)
            | StoreError::Corrupt { .. }
            | StoreError::Migration(_) => false,
        }
    }
}

pub(crate) fn database_error_is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite result codes: SQLITE_BUSY and SQLITE_LOCKED, with
                // their extended codes in the high bits.
                return code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            }
            // PostgreSQL SQLSTATE classes: connection exception, transaction
            // rollback (serialization, deadlock), insufficient resources,
            // operator intervention, system error.
            ["08", "40", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
        }
        _ => false,
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
