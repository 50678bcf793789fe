//! Where VMs come from: one trait, a local provider (child processes) and a
//! cloud one (GCP, in `sp-gcp`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::external::CallError;

/// Label every VM of the platform carries, so reconciliation finds them all.
pub const MANAGED_LABEL: (&str, &str) = ("sample-platform", "managed");
pub const RUN_LABEL: &str = "sp-run";
pub const ATTEMPT_LABEL: &str = "sp-attempt";
pub const PLATFORM_LABEL: &str = "sp-platform";

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateVm {
    pub name: String,
    pub platform: String,
    /// The same key for every try of one attempt: a provider that sees it again
    /// returns the VM it made, never a second one.
    pub idempotency_key: String,
    pub labels: BTreeMap<String, String>,
    /// Handed to the runner (report URL, its credential); never a cloud key.
    pub metadata: BTreeMap<String, String>,
    /// A cloud-side backstop: the VM deletes itself after this.
    pub max_run_duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmState {
    Provisioning,
    Running,
    Stopping,
    /// Gone or about to be: the runner on it is not running.
    Terminated,
}

/// A VM as the provider lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: VmState,
}

impl VmInfo {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// The labels of a platform VM for a run attempt.
pub fn labels(run_id: &str, attempt: u32, platform: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_LABEL.0.to_string(), MANAGED_LABEL.1.to_string()),
        (RUN_LABEL.to_string(), run_id.to_string()),
        (ATTEMPT_LABEL.to_string(), attempt.to_string()),
        (PLATFORM_LABEL.to_string(), platform.to_string()),
    ])
}

#[async_trait]
pub trait VmProvider: Send + Sync + std::fmt::Debug {
    /// Create the VM, or return it if it exists already (same name or key).
    async fn create(&self, request: &CreateVm) -> Result<VmInfo, CallError>;

    /// Delete the VM; one that does not exist counts as deleted.
    async fn delete(&self, name: &str) -> Result<(), CallError>;

    /// Every VM carrying all of `labels`.
    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VmInfo>, CallError>;
}
