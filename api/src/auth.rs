//! Operators' API tokens: random secrets handed out once, stored as SHA-256
//! (they are long and random, so a fast hash is enough), each with scopes.

use std::fmt;

use chrono::Utc;
use sha2::{Digest, Sha256};
use sp_commands::Envelope;
use sp_domain::access::{self, AccessEvent};
use sp_eventstore::{Database, Pool, StoreError, tokens};
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
    /// Create and revoke tokens over the API.
    Admin,
    /// Queue custom runs of one's own fork, and run them again: a person's,
    /// signed in with GitHub (their login is what is checked), never a
    /// token's.
    Contribute,
}

impl Scope {
    /// A token's scope by name; `contribute` is a person's only.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "operate" => Some(Scope::Operate),
            "catalogue" => Some(Scope::Catalogue),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Catalogue => "catalogue",
            Scope::Admin => "admin",
            Scope::Contribute => "contribute",
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
    #[error("unknown scope {0:?}: use read, operate, catalogue or admin")]
    UnknownScope(String),
    #[error("a token needs at least one scope: read, operate, catalogue or admin")]
    NoScope,
    #[error("a token named {0:?} already exists")]
    Exists(String),
    #[error("no active token named {0:?}")]
    NotFound(String),
    #[error("token names are 1 to 64 letters, digits, dots, dashes or underscores")]
    InvalidName,
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("the token changed, but recording the change in the access stream failed: {0}")]
    NotRecorded(StoreError),
    /// The token exists and works; only its record is missing. Its secret
    /// is here so it is not lost with the error.
    #[error(
        "the token was created, but recording its creation in the access stream failed: {error}"
    )]
    CreatedNotRecorded { secret: String, error: StoreError },
}

impl From<TokenError> for sp_commands::Error {
    fn from(e: TokenError) -> Self {
        use sp_commands::Error;
        match e {
            TokenError::UnknownScope(_) | TokenError::InvalidName | TokenError::NoScope => {
                Error::invalid(e.to_string())
            }
            TokenError::Exists(_) => Error::conflict(e.to_string()),
            TokenError::NotFound(_) => Error::not_found(e.to_string()),
            TokenError::Database(_) => Error::unavailable(e.to_string()),
            TokenError::NotRecorded(_) | TokenError::CreatedNotRecorded { .. } => {
                Error::internal(e.to_string())
            }
        }
    }
}

/// Create a token; returns the secret, which is not stored. The change is
/// recorded, as done by `actor`, in the `access` stream.
pub async fn create(
    db: &Database,
    name: &str,
    scopes: &[String],
    actor: &str,
) -> Result<String, TokenError> {
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
    if parsed.is_empty() {
        return Err(TokenError::NoScope);
    }
    let scopes: Vec<&str> = parsed.iter().map(|s| s.as_str()).collect();
    let secret = format!("sp_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    if !tokens::insert(&db.pool, name, &hash(&secret), &scopes.join(",")).await? {
        return Err(TokenError::Exists(name.to_string()));
    }
    let event = AccessEvent::TokenCreated {
        at: Utc::now(),
        name: name.to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    match record(db, actor, event).await {
        Ok(()) => Ok(secret),
        Err(TokenError::NotRecorded(error)) => {
            Err(TokenError::CreatedNotRecorded { secret, error })
        }
        Err(other) => Err(other),
    }
}

pub async fn list(pool: &Pool) -> Result<Vec<TokenInfo>, TokenError> {
    Ok(tokens::list(pool).await?)
}

/// Revoke a token, recorded as done by `actor` in the `access` stream.
pub async fn revoke(db: &Database, name: &str, actor: &str) -> Result<(), TokenError> {
    if !tokens::revoke(&db.pool, name).await? {
        return Err(TokenError::NotFound(name.to_string()));
    }
    let event = AccessEvent::TokenRevoked {
        at: Utc::now(),
        name: name.to_string(),
    };
    record(db, actor, event).await
}

/// The table changed first, so a token is never recorded that does not
/// exist; a failure here says the record is what is missing.
async fn record(db: &Database, actor: &str, event: AccessEvent) -> Result<(), TokenError> {
    sp_commands::records::record(&*db.store, access::STREAM, &Envelope::new(actor), &[event])
        .await
        .map_err(TokenError::NotRecorded)
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
