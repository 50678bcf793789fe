//! Who may use the platform (stream `access`): operators' API tokens made and
//! revoked, people's roles granted and revoked, and their sign-ins. The
//! tokens and sessions themselves (a secret's hash, what a request is checked
//! against) stay in their tables; these events are the record an auditor
//! reads of who changed them, and when. Roles are only here: [`Roles`] folds
//! them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::EventSchema;

pub const STREAM: &str = "access";

/// What a person signed in with GitHub may do. Each role may do what the
/// ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything; every signed-in person is one.
    Reader,
    /// Queue runs of their own forks, and run their own runs again.
    Contributor,
    /// The catalogue and its baselines; pause and resume platforms; cancel
    /// and re-run any run.
    Maintainer,
    /// Roles, tokens and platforms.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Reader,
        Role::Contributor,
        Role::Maintainer,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Contributor => "contributor",
            Role::Maintainer => "maintainer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// GitHub logins are case-insensitive: one key per person.
pub fn login_key(login: &str) -> String {
    login.to_ascii_lowercase()
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum AccessEvent {
    TokenCreated {
        at: DateTime<Utc>,
        /// Who the token is for (the actor of what it does).
        name: String,
        scopes: Vec<String>,
    },
    TokenRevoked {
        at: DateTime<Utc>,
        name: String,
    },
    /// `login` has `role` from now on (in place of any role before).
    RoleGranted {
        at: DateTime<Utc>,
        login: String,
        role: Role,
    },
    /// `login` is a reader again.
    RoleRevoked {
        at: DateTime<Utc>,
        login: String,
        role: Role,
    },
    /// A person signed in through GitHub's OAuth.
    SignedIn {
        at: DateTime<Utc>,
        login: String,
        github_id: i64,
    },
    SignedOut {
        at: DateTime<Utc>,
        login: String,
    },
}

impl EventSchema for AccessEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

/// The roles the `access` stream has granted, folded event by event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    granted: BTreeMap<String, Role>,
}

impl Roles {
    pub fn apply(&mut self, event: &AccessEvent) {
        match event {
            AccessEvent::RoleGranted { login, role, .. } => {
                self.granted.insert(login_key(login), *role);
            }
            AccessEvent::RoleRevoked { login, .. } => {
                self.granted.remove(&login_key(login));
            }
            AccessEvent::TokenCreated { .. }
            | AccessEvent::TokenRevoked { .. }
            | AccessEvent::SignedIn { .. }
            | AccessEvent::SignedOut { .. } => {}
        }
    }

    /// The role of `login`: an admin of the settings (`SP_ADMINS`) always
    /// is one; anyone else has what was granted, or reads.
    pub fn of(&self, login: &str, admins: &[String]) -> Role {
        let key = login_key(login);
        if admins.iter().any(|a| login_key(a) == key) {
            return Role::Admin;
        }
        self.granted.get(&key).copied().unwrap_or(Role::Reader)
    }

    /// Every granted role, by login.
    pub fn granted(&self) -> impl Iterator<Item = (&str, Role)> {
        self.granted.iter().map(|(l, r)| (l.as_str(), *r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_fold_grants_and_revocations_case_insensitively() {
        let at = Utc::now();
        let mut roles = Roles::default();
        for event in [
            AccessEvent::RoleGranted {
                at,
                login: "Alice".into(),
                role: Role::Maintainer,
            },
            AccessEvent::RoleGranted {
                at,
                login: "bob".into(),
                role: Role::Contributor,
            },
            AccessEvent::RoleGranted {
                at,
                login: "alice".into(),
                role: Role::Admin,
            },
            AccessEvent::RoleRevoked {
                at,
                login: "BOB".into(),
                role: Role::Contributor,
            },
        ] {
            roles.apply(&event);
        }
        assert_eq!(roles.of("ALICE", &[]), Role::Admin);
        assert_eq!(roles.of("bob", &[]), Role::Reader);
        assert_eq!(roles.of("carol", &["Carol".into()]), Role::Admin);
        assert_eq!(roles.of("dave", &[]), Role::Reader);
    }
}
