//! One active instance of the process managers at a time, and of the read
//! models' projector (each its own lease, [`Role`]).
//!
//! On PostgreSQL the leader holds a session advisory lock on a connection of
//! its own: if the process dies, its connection closes and the lock goes
//! with it, so a standby (retrying every second) takes over within seconds.
//! Each takeover increments a fencing token: every append the leader's
//! managers make is fenced by it (`FencedStore`), so once a
//! standby has taken over, nothing the deposed leader still decides lands.
//! The token is also in the actor of every command. On SQLite the single
//! process is the leader.

use std::time::Duration;

use crate::{Database, Fence, Pool, StoreError, Tx, on_tx};
use chrono::Utc;
use sqlx::Connection;
use sqlx::pool::PoolConnection;
use tokio_util::sync::CancellationToken;

/// How often a standby tries to take over, and the leader checks its lock.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Leadership held: `lost` is cancelled when it ends.
#[derive(Debug)]
pub struct Leadership {
    /// The lease and token every append of the managers is fenced by.
    pub fence: Fence,
    pub lost: CancellationToken,
}

impl Leadership {
    pub fn token(&self) -> i64 {
        self.fence.token
    }
}

/// What a lease is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The process managers: their appends are fenced by the lease.
    Managers,
    /// The read models' projector: the others follow it.
    Projections,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Managers => "managers",
            Role::Projections => "projections",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Role::Managers => "the process managers",
            Role::Projections => "the read models' projector",
        }
    }
}

/// The name of a role's lease in a deployment.
pub fn lease_name(db: &Database, role: Role) -> String {
    format!("sample-platform:{}:{}", role.as_str(), db.deployment)
}

/// Wait until this instance leads `role` (or `shutdown`); then keep
/// watching the lease in the background.
pub async fn acquire(
    db: &Database,
    role: Role,
    holder: &str,
    shutdown: &CancellationToken,
) -> Option<Leadership> {
    let name = lease_name(db, role);
    let what = role.what();
    let mut waiting_logged = false;
    loop {
        match try_acquire(db, &name, holder).await {
            Ok(Some(leadership)) => {
                tracing::info!(lease = %name, token = leadership.token(), "leading {what}");
                return Some(leadership);
            }
            Ok(None) if !waiting_logged => {
                tracing::info!(lease = %name, "another instance leads {what}; standing by");
                waiting_logged = true;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot take the lease of {what}; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

async fn try_acquire(
    db: &Database,
    name: &str,
    holder: &str,
) -> Result<Option<Leadership>, StoreError> {
    let lost = CancellationToken::new();
    match &db.pool {
        Pool::Postgres(pool) => {
            // A connection of its own: the lock lives exactly as long as it.
            let mut conn: PoolConnection<sqlx::Postgres> = pool.acquire().await?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
                .bind(name)
                .fetch_one(&mut *conn)
                .await?;
            if !got {
                return Ok(None);
            }
            let mut conn = conn.detach();
            let token = next_token(db, name, holder).await?;
            let watch = lost.clone();
            let lease = name.to_string();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(CHECK_EVERY).await;
                    if watch.is_cancelled() {
                        let _ = conn.close().await;
                        return;
                    }
                    if let Err(error) = conn.ping().await {
                        tracing::error!(%error, %lease, "lost the connection holding its lease");
                        watch.cancel();
                        return;
                    }
                }
            });
            Ok(Some(Leadership {
                fence: Fence {
                    lease: name.to_string(),
                    token,
                },
                lost,
            }))
        }
        Pool::Sqlite { .. } => Ok(Some(Leadership {
            fence: Fence {
                lease: name.to_string(),
                token: next_token(db, name, holder).await?,
            },
            lost,
        })),
    }
}

async fn next_token(db: &Database, name: &str, holder: &str) -> Result<i64, StoreError> {
    let mut tx = Tx::begin(&db.pool).await?;
    let sql = "INSERT INTO leases (name, token, holder, acquired_at) VALUES ($1, 1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET token = leases.token + 1, holder = excluded.holder,
                   acquired_at = excluded.acquired_at
               RETURNING token";
    let token: i64 = on_tx!(&mut tx, c => {
        sqlx::query_scalar(sql).bind(name).bind(holder).bind(Utc::now()).fetch_one(c).await?
    });
    tx.commit().await?;
    Ok(token)
}
