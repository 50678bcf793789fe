//! Operators' API tokens as stored: a name, the SHA-256 of the secret (never
//! the secret), its scopes and whether it was revoked. What a scope means,
//! and who a secret stands for, is the API's to say.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Pool, StoreError, Tx, on_pool, on_tx};

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    pub name: String,
    /// Comma-separated.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Store a token; `Ok(false)` when the name is taken.
pub async fn insert(
    pool: &Pool,
    name: &str,
    secret_sha256: &str,
    scopes: &str,
) -> Result<bool, StoreError> {
    let mut tx = Tx::begin(pool).await?;
    let sql = "INSERT INTO api_tokens (id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)";
    let inserted = on_tx!(&mut tx, c => {
        sqlx::query(sql)
            .bind(Uuid::now_v7().to_string())
            .bind(name)
            .bind(secret_sha256)
            .bind(scopes)
            .bind(Utc::now())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    });
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(true)
}

/// Every token, by name.
pub async fn list(pool: &Pool) -> Result<Vec<TokenRow>, StoreError> {
    let sql = "SELECT name, scopes, created_at, revoked_at FROM api_tokens ORDER BY name";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, TokenRow>(sql).fetch_all(p).await?))
}

/// Revoke the active token named `name`; `Ok(false)` when there is none.
pub async fn revoke(pool: &Pool, name: &str) -> Result<bool, StoreError> {
    let mut tx = Tx::begin(pool).await?;
    let sql = "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";
    let n = on_tx!(&mut tx, c => sqlx::query(sql).bind(Utc::now()).bind(name).execute(c).await?.rows_affected());
    if n == 0 {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// The name and scopes of the active token whose secret hashes to
/// `secret_sha256`.
pub async fn active(
    pool: &Pool,
    secret_sha256: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let sql = "SELECT name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL";
    Ok(on_pool!(pool, p => sqlx::query_as(sql).bind(secret_sha256).fetch_optional(p).await?))
}
