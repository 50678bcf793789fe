//! One transaction type for both backends, for the tables beside the log
//! (read models, the lease, keys, tokens). Their SQL is written once with
//! `$N` placeholders (which SQLite accepts too) and portable types; the
//! [`on_tx!`] and [`on_pool!`] macros compile it for each backend.

use crate::Pool;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

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
            Pool::Postgres(p) => Tx::Postgres(begin_postgres(p).await?),
            Pool::Sqlite { writer, .. } => Tx::Sqlite(begin_sqlite_writer(writer).await?),
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Postgres(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
    }
}

/// `BEGIN IMMEDIATE` on SQLite's writer, safe to cancel.
///
/// sqlx 0.8's `begin_with` has an await point after the `BEGIN` ran but before
/// the `Transaction` that would roll it back exists: a caller dropped there (a
/// `timeout`, a `select!`, a client gone away, an aborted task) returned the
/// one writer connection to the pool inside an open transaction, and every
/// later `begin_with` on it failed until the connection was recycled. Run in a
/// task of its own, the begin always finishes; if its caller is gone by then,
/// the `Transaction` is dropped and rolls back in order.
pub(crate) async fn begin_sqlite_writer(
    writer: &SqlitePool,
) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    let writer = writer.clone();
    finish(tokio::spawn(async move {
        writer.begin_with("BEGIN IMMEDIATE").await
    }))
    .await
}

/// `BEGIN` on PostgreSQL, safe to cancel for the same reason: sqlx 0.8 raises
/// its transaction depth only after the server answered, so a caller dropped
/// while waiting left the connection idle in a transaction nobody ends.
pub(crate) async fn begin_postgres(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    finish(tokio::spawn(async move { pool.begin().await })).await
}

async fn finish<T>(
    task: tokio::task::JoinHandle<Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels the task.
        Err(_) => Err(sqlx::Error::PoolClosed),
    }
}
