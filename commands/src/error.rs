//! One taxonomy of failures for every use case, by what the caller can do
//! about it. The edges map a kind once each: `api/src/http/error.rs` to an
//! HTTP status, `api/src/graphql/mod.rs` to a GraphQL error code.

use sp_eventstore::StoreError;

use crate::CommandError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is wrong: the message says how to fix it.
    InvalidInput,
    /// Who is asking is not known: a credential is needed.
    Unauthenticated,
    /// Known, but not allowed to do this.
    Forbidden,
    NotFound,
    /// It exists already, or conflicts with what exists.
    Conflict,
    /// The input is larger than allowed.
    TooLarge,
    /// The domain refuses it in the current state (the run is final, say).
    Refused,
    /// A dependency did not answer or kept changing: the same request may
    /// succeed later.
    Unavailable,
    /// Our fault. The message is logged, never sent.
    Internal,
}

/// A failed use case: its kind and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::TooLarge, message)
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Refused, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// A store failure: worth a retry, an input the store cannot take, or ours.
    pub fn of_store(e: StoreError) -> Self {
        match e {
            e if e.is_transient() => Error::unavailable(e.to_string()),
            StoreError::Invalid(m) => Error::invalid(m),
            e => Error::internal(e.to_string()),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::of_store(e)
    }
}

impl<R: std::error::Error + 'static> From<CommandError<R>> for Error {
    fn from(e: CommandError<R>) -> Self {
        match e {
            CommandError::Rejected(r) => Error::refused(r.to_string()),
            CommandError::Contended { .. } => Error::unavailable(e.to_string()),
            CommandError::Store(store) => Error::of_store(store),
            CommandError::Corrupt { .. } => Error::internal(e.to_string()),
        }
    }
}

impl From<sp_files::FileError> for Error {
    fn from(e: sp_files::FileError) -> Self {
        use sp_files::FileError;
        match e {
            FileError::TooLarge { .. } => Error::too_large(e.to_string()),
            FileError::HashMismatch { .. } | FileError::NotAHash(_) | FileError::Body(_) => {
                Error::invalid(e.to_string())
            }
            // The store's trouble is not the caller's: worth trying again.
            FileError::Store(_) | FileError::Config(..) | FileError::Local { .. } => {
                Error::unavailable(e.to_string())
            }
        }
    }
}
