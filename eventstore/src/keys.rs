//! The deployment's secret keys, made once by whichever replica comes first
//! and kept in the database beside the log.

use chrono::Utc;

use crate::{Pool, StoreError, Tx, on_pool, on_tx};

/// The key named `name`: `fresh` if there was none (it is stored), else the
/// one stored first, so every replica agrees.
pub async fn key_or_insert(pool: &Pool, name: &str, fresh: &str) -> Result<String, StoreError> {
    let mut tx = Tx::begin(pool).await?;
    let insert = "INSERT INTO platform_keys (name, key, created_at) VALUES ($1, $2, $3)
                  ON CONFLICT (name) DO NOTHING";
    on_tx!(&mut tx, c => sqlx::query(insert).bind(name).bind(fresh).bind(Utc::now()).execute(c).await?.rows_affected());
    tx.commit().await?;
    let select = "SELECT key FROM platform_keys WHERE name = $1";
    Ok(on_pool!(pool, p => sqlx::query_scalar(select).bind(name).fetch_one(p).await?))
}
