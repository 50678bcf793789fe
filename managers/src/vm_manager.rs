//! Carries out recorded intents about VMs: creates every requested VM and
//! deletes every VM asked to go, then records the outcome.
//!
//! A create uses the idempotency key recorded in `VmRequested`, so a create
//! repeated after a crash or a timeout returns the VM the first one made. It
//! is bounded by the VM-create deadline; past it the timer's `TimedOut` takes
//! over. A delete is retried, with growing pauses, until the provider
//! confirms; each failure is recorded as `VmDeleteFailed`. A VM asked to go
//! while its create is still under way has the create abandoned, then is
//! deleted: a cancelled run does not wait out a slow cloud.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use sp_domain::RunCommand;
use sp_projections::VmsProjection;
use sp_projections::queries::{self, VmRow};
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::backoff::Backoff;
use crate::external::call;
use crate::metrics::Service;
use crate::provider::{CreateVm, labels};
use crate::saga::{CREATE_VM, DELETE_VM};
use crate::wake::Wake;

const NAME: &str = "vm-manager";

#[derive(Debug)]
struct Work {
    /// VMs with a create or delete under way.
    busy: HashSet<String>,
    /// Creates under way, to abandon when their VM is no longer wanted.
    creating: HashMap<String, CancellationToken>,
    /// VMs whose deletion failed, waiting to be tried again.
    delete_retry: Backoff<String>,
}

impl Work {
    fn new(pauses: (Duration, Duration)) -> Self {
        Work {
            busy: HashSet::new(),
            creating: HashMap::new(),
            delete_retry: Backoff::new(pauses.0, pauses.1),
        }
    }
}

type Shared = Arc<Mutex<Work>>;

fn lock(work: &Shared) -> std::sync::MutexGuard<'_, Work> {
    work.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn run(m: Managers, stop: CancellationToken) {
    let mut wake = Wake::new(
        &m.changes,
        m.clock.clone(),
        &[VmsProjection::NAME],
        m.config.tick,
    );
    let work: Shared = Arc::new(Mutex::new(Work::new(m.config.vm_delete_pauses)));
    loop {
        dispatch(&m, &work, &stop).await;
        if !wake.wait(None, &stop).await {
            return;
        }
    }
}

async fn dispatch(m: &Managers, work: &Shared, stop: &CancellationToken) {
    let pool = &m.db.pool;
    let (requested, deleting) = match tokio::try_join!(
        queries::vms_with_status(pool, "requested"),
        queries::vms_with_status(pool, "delete_requested"),
    ) {
        Ok(read) => read,
        Err(error) => {
            m.health.failing(
                NAME,
                format!("cannot read the VMs to create and delete: {error}"),
            );
            return;
        }
    };
    m.health.ok(NAME);
    let now = Instant::now();
    for vm in requested {
        if !lock(work).busy.insert(vm.vm_name.clone()) {
            continue;
        }
        let abandon = stop.child_token();
        lock(work)
            .creating
            .insert(vm.vm_name.clone(), abandon.clone());
        let (m, work) = (m.clone(), work.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = create(&m, &vm) => {}
                () = abandon.cancelled() => {}
            }
            let mut w = lock(&work);
            w.creating.remove(&vm.vm_name);
            w.busy.remove(&vm.vm_name);
        });
    }
    lock(work)
        .delete_retry
        .keep_only(deleting.iter().map(|vm| &vm.vm_name));
    for vm in deleting {
        {
            let mut w = lock(work);
            if w.delete_retry.waiting(&vm.vm_name, now) {
                continue;
            }
            if let Some(create) = w.creating.get(&vm.vm_name) {
                // Deleted once the create has let go of it.
                if !create.is_cancelled() {
                    tracing::info!(vm = %vm.vm_name, "the VM is no longer wanted: its create is abandoned");
                    create.cancel();
                }
                continue;
            }
            if !w.busy.insert(vm.vm_name.clone()) {
                continue;
            }
        }
        let (m, work, stop) = (m.clone(), work.clone(), stop.clone());
        tokio::spawn(async move {
            let deleted = tokio::select! {
                deleted = delete(&m, &vm) => deleted,
                () = stop.cancelled() => false,
            };
            let mut w = lock(&work);
            w.busy.remove(&vm.vm_name);
            if deleted {
                w.delete_retry.succeeded(&vm.vm_name);
            } else {
                w.delete_retry.failed(&vm.vm_name);
            }
        });
    }
}

/// What the runner on a VM needs to know, as metadata (never a cloud key).
fn runner_metadata(m: &Managers, vm: &VmRow) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        ("run-id".to_string(), vm.run_id.to_string()),
        ("attempt".to_string(), vm.attempt.to_string()),
        ("platform".to_string(), vm.platform.clone()),
        (
            "runner-token".to_string(),
            m.keys.credential(
                &vm.run_id.to_string(),
                u32::try_from(vm.attempt).unwrap_or(0),
            ),
        ),
        (
            "report-url".to_string(),
            format!(
                "{}/runner/v1/runs/{}",
                m.config.public_url.trim_end_matches('/'),
                vm.run_id
            ),
        ),
    ])
}

async fn create(m: &Managers, vm: &VmRow) {
    let run = vm.run_id;
    let policy = &m.config.policy.deadlines;
    let deadline = vm.requested_at + policy.vm_create;
    let Ok(budget) = (deadline - m.clock.now()).to_std() else {
        // Past its deadline: the timer times the attempt out and compensates.
        return;
    };
    let attempt = u32::try_from(vm.attempt).unwrap_or(0);
    let request = CreateVm {
        name: vm.vm_name.clone(),
        platform: vm.platform.clone(),
        idempotency_key: vm.idempotency_key.clone(),
        labels: labels(&vm.run_id.to_string(), attempt, &vm.platform),
        metadata: runner_metadata(m, vm),
        // A backstop for a platform that dies for good: the VM goes by itself.
        max_run_duration: (policy.whole_run + policy.boot + policy.vm_create)
            .to_std()
            .unwrap_or(Duration::from_secs(4 * 3600)),
    };
    let what = CREATE_VM.on(&vm.vm_name);
    let created = tokio::time::timeout(
        budget,
        m.config.metrics.outside_call(
            Service::Compute,
            "create",
            call(&what, &m.config.vm_create, || m.provider.create(&request)),
        ),
    )
    .await;
    let command = match created {
        Ok(Ok(_)) => RunCommand::RecordVmCreated {
            attempt,
            vm_name: vm.vm_name.clone(),
        },
        Ok(Err(e)) => RunCommand::RecordVmCreateFailed {
            attempt,
            vm_name: vm.vm_name.clone(),
            class: e.class,
            message: e.message,
        },
        Err(_) => {
            tracing::warn!(vm = %vm.vm_name, "VM creation outlasted its deadline; the timer takes over");
            return;
        }
    };
    let outcome = m.command(NAME, run, &command).await;
    m.log_outcome(NAME, run, &what, outcome);
}

/// Delete and record; false when it must be tried again later.
async fn delete(m: &Managers, vm: &VmRow) -> bool {
    let run = vm.run_id;
    let what = DELETE_VM.on(&vm.vm_name);
    let deleted = call(&what, &m.config.vm_delete, || {
        m.provider.delete(&vm.vm_name)
    });
    let command = match m
        .config
        .metrics
        .outside_call(Service::Compute, "delete", deleted)
        .await
    {
        Ok(()) => RunCommand::RecordVmDeleted {
            vm_name: vm.vm_name.clone(),
        },
        Err(e) => RunCommand::RecordVmDeleteFailed {
            vm_name: vm.vm_name.clone(),
            class: e.class,
            message: e.message,
        },
    };
    let deleted = matches!(command, RunCommand::RecordVmDeleted { .. });
    let outcome = m.command(NAME, run, &command).await;
    let recorded = outcome.is_ok();
    m.log_outcome(NAME, run, &what, outcome);
    deleted && recorded
}
