//! People signed in with GitHub: their sessions (a random id in a cookie,
//! stored as its SHA-256, with the CSRF token their mutations carry) and
//! their roles, which are events of the `access` stream folded here. A
//! person's role gives them the scopes a token would, so every check stays
//! in [`Caller::authorize`].

use std::sync::Arc;

use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use sp_commands::Envelope;
use sp_domain::access::{self, AccessEvent, Role, Roles};
use sp_domain::codec::EventSchema;
use sp_eventstore::sessions::{self, SessionRow};
use sp_eventstore::{Database, StoreError};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::auth::{Caller, Scope};

/// What a role may do, as token scopes.
pub fn scopes(role: Role) -> Vec<Scope> {
    match role {
        Role::Reader => vec![Scope::Read],
        Role::Contributor => vec![Scope::Read, Scope::Contribute],
        Role::Maintainer => vec![
            Scope::Read,
            Scope::Contribute,
            Scope::Operate,
            Scope::Catalogue,
        ],
        Role::Admin => vec![
            Scope::Read,
            Scope::Contribute,
            Scope::Operate,
            Scope::Catalogue,
            Scope::Admin,
        ],
    }
}

/// A signed-in person as the API sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub login: String,
    pub role: Role,
    /// What a mutation made with this session's cookie must carry in
    /// `X-CSRF-Token`.
    pub csrf: String,
}

/// The GitHub login of a caller signed in with GitHub (`github:<login>`);
/// `None` for a token or anonymous.
pub fn login_of(caller: &Caller) -> Option<&str> {
    caller.actor.strip_prefix("github:")
}

impl Person {
    pub fn caller(&self) -> Caller {
        Caller {
            actor: format!("github:{}", self.login),
            scopes: scopes(self.role),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("unknown role {0:?}: use reader, contributor, maintainer or admin")]
    UnknownRole(String),
    #[error("{0:?} is not a GitHub login")]
    InvalidLogin(String),
    #[error("{0} is an admin by the platform's settings (SP_ADMINS); change them there")]
    AdminBySettings(String),
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("an access event cannot be read: {0}")]
    Decode(String),
}

impl From<PeopleError> for sp_commands::Error {
    fn from(e: PeopleError) -> Self {
        use sp_commands::Error;
        match e {
            PeopleError::UnknownRole(_) | PeopleError::InvalidLogin(_) => {
                Error::invalid(e.to_string())
            }
            PeopleError::AdminBySettings(_) => Error::conflict(e.to_string()),
            PeopleError::Database(_) => Error::unavailable(e.to_string()),
            PeopleError::Decode(_) => Error::internal(e.to_string()),
        }
    }
}

/// Sessions and roles of one deployment.
#[derive(Debug, Clone)]
pub struct People {
    db: Database,
    admins: Vec<String>,
    session_length: Duration,
    /// The roles as of a version of the `access` stream: each lookup reads
    /// only the events after it, so a grant on another replica counts at
    /// the next request.
    roles: Arc<Mutex<(u64, Roles)>>,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// GitHub's rule: 1 to 39 letters, digits or single hyphens, not at an end.
pub fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl People {
    pub fn new(db: Database, admins: Vec<String>, session_hours: u64) -> People {
        People {
            db,
            admins,
            session_length: Duration::hours(
                i64::try_from(session_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
            roles: Arc::new(Mutex::new((0, Roles::default()))),
        }
    }

    /// How long a session lasts, for its cookie.
    pub fn session_seconds(&self) -> i64 {
        self.session_length.num_seconds()
    }

    /// The roles now: the cached fold, brought up to the stream's end.
    pub async fn roles(&self) -> Result<Roles, PeopleError> {
        let mut cached = self.roles.lock().await;
        let events = self
            .db
            .store
            .read_stream(access::STREAM, cached.0 + 1)
            .await?;
        for event in &events {
            let decoded =
                AccessEvent::decode(&event.event_type, event.schema_version, event.data.as_str())
                    .map_err(|e| PeopleError::Decode(e.to_string()))?;
            cached.1.apply(&decoded);
            cached.0 = event.stream_version;
        }
        Ok(cached.1.clone())
    }

    pub async fn role_of(&self, login: &str) -> Result<Role, PeopleError> {
        Ok(self.roles().await?.of(login, &self.admins))
    }

    /// Every person with a role other than reader: granted ones, and the
    /// settings' admins.
    pub async fn granted(&self) -> Result<Vec<(String, Role)>, PeopleError> {
        let roles = self.roles().await?;
        let mut all: Vec<(String, Role)> = roles
            .granted()
            .map(|(login, _)| (login.to_string(), roles.of(login, &self.admins)))
            .collect();
        for admin in &self.admins {
            if !all
                .iter()
                .any(|(l, _)| access::login_key(l) == access::login_key(admin))
            {
                all.push((admin.clone(), Role::Admin));
            }
        }
        all.sort();
        Ok(all)
    }

    /// Give `login` a role (reader takes away any other), recorded as done
    /// by `actor`. Returns whether anything changed.
    pub async fn set_role(
        &self,
        actor: &str,
        login: &str,
        role: &str,
    ) -> Result<bool, PeopleError> {
        let role = Role::parse(role).ok_or_else(|| PeopleError::UnknownRole(role.to_string()))?;
        if !valid_login(login) {
            return Err(PeopleError::InvalidLogin(login.to_string()));
        }
        let key = access::login_key(login);
        if self.admins.iter().any(|a| access::login_key(a) == key) {
            return Err(PeopleError::AdminBySettings(login.to_string()));
        }
        let now = self.roles().await?.of(login, &self.admins);
        if now == role {
            return Ok(false);
        }
        let at = Utc::now();
        let event = if role == Role::Reader {
            AccessEvent::RoleRevoked {
                at,
                login: key,
                role: now,
            }
        } else {
            AccessEvent::RoleGranted {
                at,
                login: key,
                role,
            }
        };
        self.record(actor, event).await?;
        Ok(true)
    }

    /// A new session for a person GitHub vouched for: its id (for the
    /// cookie; only its hash is kept) and the person.
    pub async fn sign_in(
        &self,
        login: &str,
        github_id: i64,
    ) -> Result<(String, Person), PeopleError> {
        let id = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let csrf = format!("{}", Uuid::new_v4().simple());
        let now = Utc::now();
        sessions::insert(
            &self.db.pool,
            &SessionRow {
                id_hash: hash(&id),
                login: login.to_string(),
                github_id,
                csrf: csrf.clone(),
                created_at: now,
                expires_at: now + self.session_length,
            },
        )
        .await?;
        let event = AccessEvent::SignedIn {
            at: now,
            login: login.to_string(),
            github_id,
        };
        self.record(&format!("github:{login}"), event).await?;
        let role = self.role_of(login).await?;
        Ok((
            id,
            Person {
                login: login.to_string(),
                role,
                csrf,
            },
        ))
    }

    /// The person a session cookie stands for; `None` for an unknown,
    /// ended or expired session.
    pub async fn session(&self, id: &str) -> Result<Option<Person>, PeopleError> {
        let Some(row) = sessions::active(&self.db.pool, &hash(id), Utc::now()).await? else {
            return Ok(None);
        };
        let role = self.role_of(&row.login).await?;
        Ok(Some(Person {
            login: row.login,
            role,
            csrf: row.csrf,
        }))
    }

    /// End a session; `false` when there was none.
    pub async fn sign_out(&self, id: &str) -> Result<bool, PeopleError> {
        let Some(person) = self.session(id).await? else {
            return Ok(false);
        };
        if !sessions::delete(&self.db.pool, &hash(id)).await? {
            return Ok(false);
        }
        let event = AccessEvent::SignedOut {
            at: Utc::now(),
            login: person.login.clone(),
        };
        self.record(&format!("github:{}", person.login), event)
            .await?;
        Ok(true)
    }

    async fn record(&self, actor: &str, event: AccessEvent) -> Result<(), PeopleError> {
        sp_commands::records::record(
            &*self.db.store,
            access::STREAM,
            &Envelope::new(actor),
            &[event],
        )
        .await
        .map_err(PeopleError::Database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_githubs_rule() {
        for ok in ["a", "octo-cat", "A1", &"x".repeat(39)] {
            assert!(valid_login(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a b", "a_b", &"x".repeat(40), "é"] {
            assert!(!valid_login(bad), "{bad}");
        }
    }

    #[test]
    fn each_role_may_do_what_the_ones_before_it_may() {
        for pair in Role::ALL.windows(2) {
            let (lower, higher) = (scopes(pair[0]), scopes(pair[1]));
            assert!(lower.iter().all(|s| higher.contains(s)), "{pair:?}");
        }
    }
}
