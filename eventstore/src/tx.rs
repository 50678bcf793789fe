//! One transaction type for both backends, for the tables beside the log
//! (read models, the lease, keys, tokens). Their SQL is written once with
//! `$N` placeholders (which SQLite accepts too) and portable types; the
//! [`on_tx!`] and [`on_pool!`] macros compile it for each backend.

use crate::Pool;
use sqlx::{Postgres, Sqlite, Transaction};

/// A read-model transaction on either backend.
#[derive(Debug)]
pub enum Tx<'c> {
    Postgres(Transaction<'c, Postgres>),
    Sqlite(Transaction<'c, Sqlite>),
}

/// Run `$body` with `$c` bound to the backend's connection.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Run `$body` with `$p` bound to a pool for reading.
#[macro_export]
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::Pool::Postgres($p) => $body,
            $crate::Pool::Sqlite { reader: $p, .. } => $body,
        }
    };
}

impl Tx<'static> {
    /// Begin a write transaction (on SQLite, on the single writer connection,
    /// taking the write lock at once).
    pub async fn begin(pool: &Pool) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match pool {
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
            Pool::Sqlite { writer, .. } => Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
    }
}
