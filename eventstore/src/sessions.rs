//! People's sessions as stored: the SHA-256 of the session id (never the
//! id), who signed in, the CSRF token of the session's mutations and when it
//! expires. What a session may do is the API's to say.

use chrono::{DateTime, Utc};

use crate::{Pool, StoreError, Tx, on_pool, on_tx};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub login: String,
    pub github_id: i64,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Store a new session, and let go of every expired one: sessions are made
/// only as fast as people sign in, so the table stays as small as the
/// sessions alive.
pub async fn insert(pool: &Pool, row: &SessionRow) -> Result<(), StoreError> {
    let mut tx = Tx::begin(pool).await?;
    let expired = "DELETE FROM sessions WHERE expires_at < $1";
    let sql = "INSERT INTO sessions (id_hash, login, github_id, csrf, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(&mut tx, c => {
        sqlx::query(expired)
            .bind(row.created_at)
            .execute(&mut *c)
            .await?;
        sqlx::query(sql)
            .bind(&row.id_hash)
            .bind(&row.login)
            .bind(row.github_id)
            .bind(&row.csrf)
            .bind(row.created_at)
            .bind(row.expires_at)
            .execute(c)
            .await?
            .rows_affected()
    });
    tx.commit().await?;
    Ok(())
}

/// The session whose id hashes to `id_hash`, if it has not expired at `now`.
pub async fn active(
    pool: &Pool,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionRow>, StoreError> {
    let sql = "SELECT id_hash, login, github_id, csrf, created_at, expires_at
               FROM sessions WHERE id_hash = $1";
    let row: Option<SessionRow> =
        on_pool!(pool, p => sqlx::query_as(sql).bind(id_hash).fetch_optional(p).await?);
    // Compared here, not in SQL: SQLite keeps times as text.
    Ok(row.filter(|r| r.expires_at > now))
}

/// End a session; `Ok(false)` when there was none.
pub async fn delete(pool: &Pool, id_hash: &str) -> Result<bool, StoreError> {
    let mut tx = Tx::begin(pool).await?;
    let sql = "DELETE FROM sessions WHERE id_hash = $1";
    let n = on_tx!(&mut tx, c => sqlx::query(sql).bind(id_hash).execute(c).await?.rows_affected());
    tx.commit().await?;
    Ok(n > 0)
}
