//! Reconciliation, at start-up and periodically: what the provider has against
//! what the runs say.
//!
//! - a VM of a final run, of an older attempt, or of a run or VM the platform
//!   does not know is deleted (through its run, `VmDeleteRequested`, when it
//!   has one; directly, with a notice, when not);
//! - a running attempt whose VM is gone or stopped (preempted, deleted by hand)
//!   is recorded as such and retried, by the domain's rules.

use std::collections::{BTreeMap, HashSet};

use sp_domain::{Lifecycle, Phase, RunCommand, RunId, RunState, VmStatus};
use sp_projections::queries;
use tokio_util::sync::CancellationToken;

use crate::Managers;
use crate::external::{CallPolicy, call};
use crate::metrics::Service;
use crate::provider::{MANAGED_LABEL, RUN_LABEL, VmInfo, VmState};
use crate::saga::DELETE_ORPHAN;

const NAME: &str = "reconciler";

pub async fn run(m: Managers, stop: CancellationToken) {
    // VMs seen missing once: a VM is reported vanished when missing twice in
    // a row, so a listing that lags behind a creation does not retry a run.
    let mut missing_once = HashSet::new();
    loop {
        reconcile(&m, &mut missing_once).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(m.config.reconcile_every) => {}
        }
    }
}

/// One pass.
pub async fn reconcile(m: &Managers, missing_once: &mut HashSet<String>) {
    let managed = BTreeMap::from([(MANAGED_LABEL.0.to_string(), MANAGED_LABEL.1.to_string())]);
    let list_policy = CallPolicy::new(m.config.vm_delete.timeout, 3);
    let listing = call("list the platform's VMs", &list_policy, || {
        m.provider.list(&managed)
    });
    let listed = match m
        .config
        .metrics
        .outside_call(Service::Compute, "list", listing)
        .await
    {
        Ok(listed) => listed,
        Err(e) => {
            m.health.failing(NAME, &e.message);
            m.notice(NAME, "provider_list_failed", e.message).await;
            return;
        }
    };

    let entries = match queries::running(&m.db.pool, None).await {
        Ok(entries) => entries,
        Err(error) => {
            m.health
                .failing(NAME, format!("cannot read the queue: {error}"));
            return;
        }
    };
    // A running VM the queue shows in use by its run's current attempt
    // needs no look at the run: acting needs the run's own state, but not
    // acting can wait for the next pass if the read model is behind.
    let in_use: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.vm_name.as_deref())
        .collect();
    // The run of any other listed VM, from the managers' kept folds: a
    // pass reads only what the run recorded since the last one.
    for vm in &listed {
        if vm.state != VmState::Terminated && in_use.contains(vm.name.as_str()) {
            continue;
        }
        let run_id = vm.label(RUN_LABEL).and_then(|r| r.parse::<RunId>().ok());
        let state = match run_id {
            Some(run) => match m.runs.load(&run.stream()).await {
                Ok(loaded) => Some(loaded.state),
                Err(error) => {
                    m.health.failing(
                        NAME,
                        format!("cannot read the run of VM {}: {error}", vm.name),
                    );
                    continue;
                }
            },
            None => None,
        };
        check_vm(m, vm, run_id, state.as_ref()).await;
    }

    // Running attempts whose VM is not listed at all.
    let listed_names: HashSet<&str> = listed.iter().map(|vm| vm.name.as_str()).collect();
    forget_abandoned_vms_now_gone(m, &listed_names).await;
    m.health.ok(NAME);
    let mut still_missing = HashSet::new();
    for entry in &entries {
        let running = matches!(entry.stage.as_str(), "booting" | "preparing" | "testing");
        let Some(vm_name) = entry.vm_name.clone().filter(|_| running) else {
            continue;
        };
        if listed_names.contains(vm_name.as_str()) {
            continue;
        }
        if !missing_once.contains(&vm_name) {
            still_missing.insert(vm_name);
            continue;
        }
        let run = entry.run_id;
        let attempt = u32::try_from(entry.attempt).unwrap_or(0);
        let outcome = m
            .command(
                NAME,
                run,
                &RunCommand::ReportVmVanished { attempt, vm_name },
            )
            .await;
        m.log_outcome(NAME, run, "report a vanished VM", outcome);
    }
    *missing_once = still_missing;
}

async fn check_vm(m: &Managers, vm: &VmInfo, run_id: Option<RunId>, state: Option<&RunState>) {
    let run = state.and_then(|s| s.run.as_ref());
    let (Some(run_id), Some(run)) = (run_id, run) else {
        return delete_orphan(m, vm, "its run is unknown to the platform").await;
    };
    let Some(record) = run.vms.get(&vm.name) else {
        return delete_orphan(m, vm, &format!("run {run_id} never asked for it")).await;
    };
    let current = match &run.lifecycle {
        Lifecycle::Active { phase, .. } => phase.vm_name() == Some(vm.name.as_str()),
        Lifecycle::Final(_) => false,
    };
    match record.status {
        VmStatus::Requested | VmStatus::Created if !current => {
            let reason = if state.is_some_and(RunState::is_final) {
                "reconciliation: the run is final"
            } else {
                "reconciliation: the VM belongs to an older attempt"
            };
            let command = RunCommand::RequestVmDelete {
                vm_name: vm.name.clone(),
                reason: reason.into(),
            };
            let outcome = m.command(NAME, run_id, &command).await;
            m.log_outcome(NAME, run_id, "request an unwanted VM's deletion", outcome);
        }
        VmStatus::Created if vm.state == VmState::Terminated => {
            let running = matches!(
                &run.lifecycle,
                Lifecycle::Active {
                    phase: Phase::Booting { .. } | Phase::Running { .. },
                    ..
                }
            );
            if running {
                let command = RunCommand::ReportVmVanished {
                    attempt: record.attempt,
                    vm_name: vm.name.clone(),
                };
                let outcome = m.command(NAME, run_id, &command).await;
                m.log_outcome(NAME, run_id, "report a stopped VM", outcome);
            }
        }
        VmStatus::Deleted => {
            delete_orphan(
                m,
                vm,
                &format!("run {run_id} recorded it deleted, yet it exists"),
            )
            .await;
        }
        // Being created, running as it should, being deleted already, or
        // left to a person after deleting it failed.
        VmStatus::Requested
        | VmStatus::Created
        | VmStatus::DeleteRequested
        | VmStatus::Abandoned => {}
    }
}

/// A VM left to a person that the provider no longer lists was deleted by
/// hand: record it deleted, which ends its needs-a-human state.
async fn forget_abandoned_vms_now_gone(m: &Managers, listed: &HashSet<&str>) {
    let abandoned = match queries::vms_with_status(&m.db.pool, "abandoned").await {
        Ok(rows) => rows,
        Err(error) => {
            m.health
                .failing(NAME, format!("cannot read the abandoned VMs: {error}"));
            return;
        }
    };
    for vm in abandoned
        .iter()
        .filter(|vm| !listed.contains(vm.vm_name.as_str()))
    {
        let run = vm.run_id;
        let command = RunCommand::RecordVmDeleted {
            vm_name: vm.vm_name.clone(),
        };
        let outcome = m.command(NAME, run, &command).await;
        m.log_outcome(NAME, run, "record an abandoned VM gone", outcome);
    }
}

/// Delete a VM no run can account for, and record that it happened.
async fn delete_orphan(m: &Managers, vm: &VmInfo, why: &str) {
    let what = DELETE_ORPHAN.on(&vm.name);
    let deleted = call(&what, &m.config.vm_delete, || m.provider.delete(&vm.name));
    match m
        .config
        .metrics
        .outside_call(Service::Compute, "delete", deleted)
        .await
    {
        Ok(()) => {
            m.notice(
                NAME,
                "orphan_vm_deleted",
                format!("deleted VM {}: {why}", vm.name),
            )
            .await;
        }
        Err(e) => {
            m.notice(
                NAME,
                "orphan_vm_delete_failed",
                format!("{}; it remains: {why}", e.message),
            )
            .await;
        }
    }
}
