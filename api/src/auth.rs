//! Operators' API tokens: random secrets handed out once, stored as SHA-256
//! (they are long and random, so a fast hash is enough), each with scopes.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sp_eventstore::Pool;
use sp_projections::{Tx, on_pool, on_tx};
use uuid::Uuid;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read the API when anonymous reading is off.
    Read,
    /// Enqueue, cancel, retry; pause platforms; block users.
    Operate,
    /// Change the regression catalogue.
    Catalogue,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "operate" => Some(Scope::Operate),
            "catalogue" => Some(Scope::Catalogue),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Catalogue => "catalogue",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Recorded as the actor of what the caller does: `user:<token name>`.
    pub actor: String,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller {
            actor: "anonymous".into(),
            scopes: vec![],
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.scopes.is_empty() && self.actor == "anonymous"
    }

    /// Any token may read.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || (scope == Scope::Read && !self.scopes.is_empty())
    }

    /// Whether the caller may do what `scope` allows (reading needs no
    /// token while anonymous reading is on), and if not, why, in words.
    pub fn authorize(&self, scope: Scope, anonymous_read: bool) -> Result<(), Denied> {
        if self.has(scope) || (scope == Scope::Read && anonymous_read) {
            Ok(())
        } else if self.is_anonymous() {
            Err(Denied::Unauthenticated(format!(
                "this needs a token with the {scope} scope (Authorization: Bearer …)"
            )))
        } else {
            Err(Denied::Forbidden(format!(
                "the token lacks the {scope} scope"
            )))
        }
    }
}

impl From<Denied> for sp_commands::Error {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unauthenticated(m) => sp_commands::Error::unauthenticated(m),
            Denied::Forbidden(m) => sp_commands::Error::forbidden(m),
        }
    }
}

/// Why a caller may not do something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token: one with the scope would do.
    Unauthenticated(String),
    /// A token without the scope.
    Forbidden(String),
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenInfo {
    pub name: String,
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("unknown scope {0:?}: use read, operate or catalogue")]
    UnknownScope(String),
    #[error("a token named {0:?} already exists")]
    Exists(String),
    #[error("no active token named {0:?}")]
    NotFound(String),
    #[error("token names are 1 to 64 letters, digits, dots, dashes or underscores")]
    InvalidName,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Create a token; returns the secret, which is not stored.
pub async fn create(pool: &Pool, name: &str, scopes: &[String]) -> Result<String, TokenError> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid_name {
        return Err(TokenError::InvalidName);
    }
    let parsed: Vec<Scope> = scopes
        .iter()
        .map(|s| Scope::parse(s).ok_or_else(|| TokenError::UnknownScope(s.clone())))
        .collect::<Result<_, _>>()?;
    let scopes: Vec<&str> = parsed.iter().map(|s| s.as_str()).collect();
    let secret = format!("sp_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let mut tx = Tx::begin(pool).await?;
    let sql = "INSERT INTO api_tokens (id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)";
    let inserted = on_tx!(&mut tx, c => {
        sqlx::query(sql)
            .bind(Uuid::now_v7().to_string())
            .bind(name)
            .bind(hash(&secret))
            .bind(scopes.join(","))
            .bind(Utc::now())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    });
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(TokenError::Exists(name.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(secret)
}

pub async fn list(pool: &Pool) -> Result<Vec<TokenInfo>, TokenError> {
    let sql = "SELECT name, scopes, created_at, revoked_at FROM api_tokens ORDER BY name";
    Ok(on_pool!(pool, p => sqlx::query_as::<_, TokenInfo>(sql).fetch_all(p).await?))
}

pub async fn revoke(pool: &Pool, name: &str) -> Result<(), TokenError> {
    let mut tx = Tx::begin(pool).await?;
    let sql = "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL";
    let n = on_tx!(&mut tx, c => sqlx::query(sql).bind(Utc::now()).bind(name).execute(c).await?.rows_affected());
    if n == 0 {
        return Err(TokenError::NotFound(name.to_string()));
    }
    tx.commit().await?;
    Ok(())
}

/// The caller a bearer secret stands for; `None` for an unknown or revoked one.
pub async fn resolve(pool: &Pool, secret: &str) -> Result<Option<Caller>, sqlx::Error> {
    let sql = "SELECT name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL";
    let row: Option<(String, String)> =
        on_pool!(pool, p => sqlx::query_as(sql).bind(hash(secret)).fetch_optional(p).await?);
    Ok(row.map(|(name, scopes)| Caller {
        actor: format!("user:{name}"),
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
    }))
}
