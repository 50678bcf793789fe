//! Operators' API tokens: random secrets handed out once, stored as SHA-256
//! (they are long and random, so a fast hash is enough), each with scopes.

use std::fmt;

use sha2::{Digest, Sha256};
use sp_eventstore::{Pool, StoreError, tokens};
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
pub use sp_eventstore::tokens::TokenRow as TokenInfo;

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
    Database(#[from] StoreError),
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
    if !tokens::insert(pool, name, &hash(&secret), &scopes.join(",")).await? {
        return Err(TokenError::Exists(name.to_string()));
    }
    Ok(secret)
}

pub async fn list(pool: &Pool) -> Result<Vec<TokenInfo>, TokenError> {
    Ok(tokens::list(pool).await?)
}

pub async fn revoke(pool: &Pool, name: &str) -> Result<(), TokenError> {
    if !tokens::revoke(pool, name).await? {
        return Err(TokenError::NotFound(name.to_string()));
    }
    Ok(())
}

/// The caller a bearer secret stands for; `None` for an unknown or revoked one.
pub async fn resolve(pool: &Pool, secret: &str) -> Result<Option<Caller>, StoreError> {
    Ok(tokens::active(pool, &hash(secret))
        .await?
        .map(|(name, scopes)| Caller {
            actor: format!("user:{name}"),
            scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        }))
}
