//! Retention: deletes the files of finished runs that the policy lets go
//! (`sp_domain::retention`), a sweep at a time, and records each run's
//! deletions (`RunFilesDeleted`) or each failure (`FileDeleteFailed`, tried
//! again at the next sweep) in the `retention` stream.
//!
//! What it never deletes: a sample (not a kind it knows), a file of a run
//! that has not finished, an output the catalogue approves or accepts, or a
//! file another run still holds and the policy keeps; such a file goes with
//! the last run holding it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use sp_commands::{Catalogues, Envelope};
use sp_domain::RunId;
use sp_domain::retention::{self, FileKind, FinishedRun, RetentionEvent, RetentionPolicy, Rule};
use sp_files::{FileError, Files, Kind, LogName};
use sp_projections::queries;
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::external::{CallError, CallPolicy, call};
use crate::metrics::Service;

const NAME: &str = "retention";

/// What retention deletes, how often it looks, and where the files are.
#[derive(Debug, Clone)]
pub struct Retention {
    pub policy: RetentionPolicy,
    pub every: Duration,
    pub files: Files,
    /// Each deletion's timeout and tries.
    pub call: CallPolicy,
}

pub async fn run(m: Managers, stop: CancellationToken) {
    let Some(retention) = m.config.retention.clone() else {
        return;
    };
    loop {
        if let Err(message) = sweep(&m, &retention).await {
            m.health.failing(NAME, message);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retention.every) => {}
        }
    }
}

/// One pass over every kind the policy has a rule for. Returns how many
/// files were deleted.
pub async fn sweep(m: &Managers, retention: &Retention) -> Result<usize, String> {
    if retention.policy.is_empty() {
        return Ok(0);
    }
    let finished = finished_runs(m).await?;
    let now = m.clock.now();
    let mut deleted = 0;
    for kind in FileKind::ALL {
        let Some(rule) = retention.policy.rule(kind) else {
            continue;
        };
        let due = retention::due(&finished, &rule, now);
        let done: HashSet<String> = queries::retention_done(&m.db.pool, kind.as_str())
            .await
            .map_err(|e| format!("reading what retention did: {e}"))?
            .into_iter()
            .collect();
        let mut todo: Vec<RunId> = due
            .iter()
            .filter(|r| !done.contains(&r.to_string()))
            .copied()
            .collect();
        todo.sort();
        if todo.is_empty() {
            continue;
        }
        let sweep = Sweep {
            m,
            retention,
            kind,
            rule,
            due: &due,
        };
        deleted += match kind {
            FileKind::Log => sweep.logs(&todo).await?,
            FileKind::Artifact | FileKind::Output => sweep.shared(&todo).await?,
        };
    }
    m.health.ok(NAME);
    Ok(deleted)
}

async fn finished_runs(m: &Managers) -> Result<Vec<FinishedRun>, String> {
    let rows = queries::finished_runs(&m.db.pool)
        .await
        .map_err(|e| format!("reading the finished runs: {e}"))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let line = match (r.pull_request, r.branch) {
                (Some(pr), _) => format!("#{pr}"),
                (None, Some(branch)) => branch,
                (None, None) => String::new(),
            };
            Some(FinishedRun {
                run: r.run_id.parse().ok()?,
                repository: r.repository,
                line,
                platform: r.platform,
                finished_at: r.finished_at,
            })
        })
        .collect())
}

/// One kind's pass.
struct Sweep<'a> {
    m: &'a Managers,
    retention: &'a Retention,
    kind: FileKind,
    rule: Rule,
    /// Every run whose files of this kind the policy lets go (done or not).
    due: &'a HashSet<RunId>,
}

impl Sweep<'_> {
    /// Each due run's logs: its own, so all of them go.
    async fn logs(&self, runs: &[RunId]) -> Result<usize, String> {
        let files = &self.retention.files;
        let mut deleted = 0;
        for run in runs {
            let listed = self
                .outside("list", || async {
                    files.logs(run.0).await.map_err(classify)
                })
                .await;
            let logs = match listed {
                Ok(logs) => logs,
                Err(e) => {
                    self.failed(*run, "", e).await;
                    continue;
                }
            };
            let mut gone = Vec::new();
            let mut failed = false;
            for (log, _) in &logs {
                let key = format!("{}/{}", log.attempt, log.name);
                match self.delete_log(log).await {
                    Ok(()) => gone.push(key),
                    Err(e) => {
                        self.failed(*run, &key, e).await;
                        failed = true;
                    }
                }
            }
            deleted += gone.len();
            if !failed {
                self.record_done(*run, gone, vec![]).await?;
            }
        }
        Ok(deleted)
    }

    async fn delete_log(&self, log: &LogName) -> Result<(), CallError> {
        let files = &self.retention.files;
        self.outside("delete", || async {
            files.delete_log(log).await.map(|_| ()).map_err(classify)
        })
        .await
    }

    /// Artifacts and outputs, kept once by SHA-256 for every run holding
    /// them: a file goes when every run holding it is due and the catalogue
    /// does not accept it.
    async fn shared(&self, runs: &[RunId]) -> Result<usize, String> {
        let pool = &self.m.db.pool;
        let names: Vec<String> = runs.iter().map(RunId::to_string).collect();
        let held = queries::files_of_runs(pool, self.kind.as_str(), &names)
            .await
            .map_err(|e| format!("reading the runs' files: {e}"))?;
        let keys: Vec<String> = held
            .iter()
            .map(|(_, key)| key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let holders = queries::holders_of(pool, self.kind.as_str(), &keys)
            .await
            .map_err(|e| format!("reading who holds the files: {e}"))?;
        let mut still_needed: HashSet<String> = holders
            .into_iter()
            .filter(|(run, _)| run.parse().map_or(true, |r: RunId| !self.due.contains(&r)))
            .map(|(_, key)| key)
            .collect();
        if self.kind == FileKind::Output {
            let catalogue = Catalogues::new(
                self.m.db.store.clone(),
                self.m.config.policy.clone(),
                self.m.clock.clone(),
            )
            .current()
            .await
            .map_err(|e| format!("reading the catalogue: {e}"))?;
            still_needed.extend(
                catalogue
                    .state
                    .accepted_outputs()
                    .into_iter()
                    .map(String::from),
            );
        }
        let mut by_run: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (run, key) in &held {
            by_run.entry(run).or_default().push(key);
        }
        // A file is deleted once, however many due runs hold it.
        let mut outcome: HashMap<String, Result<(), CallError>> = HashMap::new();
        let mut deleted = 0;
        for run in runs {
            let name = run.to_string();
            let mut gone = Vec::new();
            let mut kept = Vec::new();
            let mut failed = false;
            for key in by_run.get(name.as_str()).into_iter().flatten() {
                if still_needed.contains(*key) {
                    kept.push(key.to_string());
                    continue;
                }
                if !outcome.contains_key(*key) {
                    let result = self.delete(key).await;
                    if result.is_ok() {
                        deleted += 1;
                    }
                    outcome.insert(key.to_string(), result);
                }
                match &outcome[*key] {
                    Ok(()) => gone.push(key.to_string()),
                    Err(e) => {
                        self.failed(*run, key, e.clone()).await;
                        failed = true;
                    }
                }
            }
            if !failed {
                self.record_done(*run, gone, kept).await?;
            }
        }
        Ok(deleted)
    }

    async fn delete(&self, key: &str) -> Result<(), CallError> {
        let kind = if self.kind == FileKind::Artifact {
            Kind::Artifact
        } else {
            Kind::Output
        };
        let files = &self.retention.files;
        self.outside("delete", || async {
            files.delete(kind, key).await.map(|_| ()).map_err(classify)
        })
        .await
    }

    /// A call to the object store, timed out, retried and counted.
    async fn outside<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let what = format!("{operation} {} files", self.kind);
        self.m
            .config
            .metrics
            .outside_call(
                Service::ObjectStore,
                operation,
                call(&what, &self.retention.call, f),
            )
            .await
    }

    async fn record_done(
        &self,
        run: RunId,
        deleted: Vec<String>,
        kept: Vec<String>,
    ) -> Result<(), String> {
        let event = RetentionEvent::RunFilesDeleted {
            at: self.m.clock.now(),
            run,
            kind: self.kind,
            deleted,
            kept,
            policy: self.rule.describe(self.kind),
        };
        self.record(run, event).await.map_err(|e| {
            format!(
                "recording the deletion of run {run}'s {} files: {e}",
                self.kind
            )
        })
    }

    async fn failed(&self, run: RunId, key: &str, error: CallError) {
        tracing::warn!(run = %run, kind = %self.kind, key, error = %error.message, "retention could not delete a file");
        let event = RetentionEvent::FileDeleteFailed {
            at: self.m.clock.now(),
            run,
            kind: self.kind,
            key: key.to_string(),
            class: error.class,
            message: error.message,
        };
        if let Err(e) = self.record(run, event).await {
            self.m.health.failing(
                NAME,
                format!("cannot record a failed deletion for run {run}: {e}"),
            );
        }
    }

    async fn record(
        &self,
        run: RunId,
        event: RetentionEvent,
    ) -> Result<(), sp_eventstore::StoreError> {
        let envelope = Envelope::new(self.m.actor(NAME)).correlated(run.0);
        sp_commands::records::record(&*self.m.store, retention::STREAM, &envelope, &[event]).await
    }
}

/// An object store's failure, classified: a store that cannot be reached
/// or answers 5xx is worth another try.
fn classify(e: FileError) -> CallError {
    if e.is_transient() {
        CallError::retryable(e.to_string())
    } else {
        CallError::permanent(e.to_string())
    }
}
