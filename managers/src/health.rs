//! What the process managers cannot do right now (a read model they cannot
//! read, a provider that does not answer), for `/readyz` and the logs. A
//! problem is cleared by the manager's next pass that succeeds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared between the managers and the HTTP API.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    role: String,
    problems: BTreeMap<String, String>,
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `leader #token`, `standby` or `disabled`.
    pub fn set_role(&self, role: impl Into<String>) {
        self.state().role = role.into();
    }

    pub fn role(&self) -> String {
        self.state().role.clone()
    }

    pub fn failing(&self, manager: &str, problem: impl std::fmt::Display) {
        let problem = problem.to_string();
        tracing::error!(manager, %problem, "a process manager cannot do its work");
        self.state().problems.insert(manager.to_string(), problem);
    }

    pub fn ok(&self, manager: &str) {
        self.state().problems.remove(manager);
    }

    pub fn problems(&self) -> BTreeMap<String, String> {
        self.state().problems.clone()
    }
}
