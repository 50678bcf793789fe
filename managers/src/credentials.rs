//! Runner credentials, one per run attempt.
//!
//! A credential is the HMAC of the run and attempt under a key the platform
//! makes on first start and keeps in its database: every try of a VM create
//! (after a crash, on another replica) hands the VM the same credential
//! without it being stored anywhere. The event log records only its SHA-256
//! (`VmRequested`), which is what a runner's report is checked against.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sp_eventstore::{Database, StoreError};

const KEY_NAME: &str = "runner-credentials";

#[derive(Clone)]
pub struct RunnerKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for RunnerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunnerKeys(***)")
    }
}

impl RunnerKeys {
    /// The deployment's key, made (once, by whichever replica comes first) if missing.
    pub async fn load_or_create(db: &Database) -> Result<RunnerKeys, StoreError> {
        let fresh = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let key = sp_eventstore::keys::key_or_insert(&db.pool, KEY_NAME, &fresh).await?;
        Ok(RunnerKeys {
            key: key.into_bytes(),
        })
    }

    /// A fixed key, for tests.
    pub fn from_key(key: &[u8]) -> RunnerKeys {
        RunnerKeys { key: key.to_vec() }
    }

    /// The credential of a run's attempt.
    pub fn credential(&self, run_id: &str, attempt: u32) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        mac.update(format!("runner:{run_id}:{attempt}").as_bytes());
        format!("spr_{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// What the log records of a credential.
    pub fn hash(credential: &str) -> String {
        hex::encode(Sha256::digest(credential.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_differ_per_attempt_and_key() {
        let a = RunnerKeys::from_key(b"one");
        let b = RunnerKeys::from_key(b"two");
        assert_eq!(a.credential("r", 1), a.credential("r", 1));
        assert_ne!(a.credential("r", 1), a.credential("r", 2));
        assert_ne!(a.credential("r", 1), b.credential("r", 1));
        assert_eq!(RunnerKeys::hash("x").len(), 64);
    }
}
