//! Prometheus metrics: what an operator alerts on.
//!
//! Two kinds. Counts of what this process did (deliveries answered, runner
//! reports, outside calls and their latency, deadlines fired, retries
//! scheduled) are recorded as they happen, into a recorder this value owns:
//! no global, so two platforms in one test process count apart. The state of
//! the whole deployment (the queue, live VMs, read-model lag, this process's
//! roles) is read from the read models when `/metrics` is scraped and set as
//! gauges then, so every replica reports the same numbers for it.
//!
//! Names and units follow Prometheus' conventions (`sp_` prefix, `_total`
//! for counters, `_seconds` for durations).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sp_domain::{ErrorClass, RunEvent};

use crate::external::CallError;

/// The services the platform calls out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Github,
    Compute,
    Artifacts,
    /// Where samples, outputs, artifacts and logs are kept (retention's deletions).
    ObjectStore,
}

impl Service {
    fn as_str(self) -> &'static str {
        match self {
            Service::Github => "github",
            Service::Compute => "compute",
            Service::Artifacts => "artifacts",
            Service::ObjectStore => "object_store",
        }
    }
}

const OUTSIDE_CALLS: &str = "sp_outside_calls_total";
const OUTSIDE_CALL_SECONDS: &str = "sp_outside_call_duration_seconds";
const DELIVERIES: &str = "sp_webhook_deliveries_total";
const REPORTS: &str = "sp_runner_reports_total";
const DEADLINES: &str = "sp_deadlines_fired_total";
const RETRIES: &str = "sp_retries_scheduled_total";
const QUEUE_RUNS: &str = "sp_queue_runs";
const RUNS: &str = "sp_runs";
const QUEUE_OLDEST: &str = "sp_queue_oldest_wait_seconds";
const VMS: &str = "sp_vms";
const LAG_EVENTS: &str = "sp_read_model_lag_events";
const LAG_SECONDS: &str = "sp_read_model_lag_seconds";
const MANAGERS_LEADER: &str = "sp_managers_leader";
const READ_MODELS_APPLYING: &str = "sp_read_models_applying";
const STATE_READ: &str = "sp_state_read";

/// An outside call's latency buckets: from a quick API answer to a VM
/// create that takes minutes.
const CALL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// This process's metrics; clones share them.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The deployment's state, read from the read models at a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Per platform: runs waiting, runs running, and the longest wait.
    pub queues: Vec<QueueState>,
    /// Per platform and VM status (requested, created, delete_requested,
    /// abandoned): how many.
    pub vms: Vec<(String, String, i64)>,
    /// Per platform and outcome: runs ever queued.
    pub runs: Vec<(String, String, i64)>,
    /// The provider this deployment creates VMs with (`local`, `gce`).
    pub provider: String,
    /// Per read model: events behind the log's head, and the age of the
    /// oldest of them.
    pub lag: Vec<(String, i64, f64)>,
    /// This process leads the process managers.
    pub managers_leader: bool,
    /// This process applies the read models (it does not follow another).
    pub read_models_applying: bool,
    /// The read models answered: without it, the queue, VM and lag gauges
    /// are left out of the scrape.
    pub read: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueState {
    pub platform: String,
    pub waiting: i64,
    pub running: i64,
    pub oldest_wait_seconds: f64,
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(OUTSIDE_CALL_SECONDS.into()), CALL_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics {
            recorder: Arc::new(recorder),
            handle,
        };
        metrics.with(describe);
        metrics
    }

    fn with(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(&*self.recorder, f);
    }

    /// Time `call` (`operation` on `service`: `create`, `get`, …) and count
    /// its outcome: `ok`, or the class of its failure (`retryable`, `quota`,
    /// `permanent`).
    pub async fn outside_call<T>(
        &self,
        service: Service,
        operation: &'static str,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => class_name(e.class),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.with(|| {
            let service = service.as_str();
            counter!(OUTSIDE_CALLS, "service" => service, "operation" => operation, "outcome" => outcome)
                .increment(1);
            metrics::histogram!(OUTSIDE_CALL_SECONDS, "service" => service, "operation" => operation)
                .record(seconds);
        });
        result
    }

    /// A webhook delivery answered: `queued`, `ignored`, `duplicate`,
    /// `refused`, …
    pub fn delivery(&self, outcome: &'static str) {
        self.with(|| counter!(DELIVERIES, "outcome" => outcome).increment(1));
    }

    /// A runner report `accepted` or `refused`.
    pub fn report(&self, outcome: &'static str) {
        self.with(|| counter!(REPORTS, "outcome" => outcome).increment(1));
    }

    /// What a process manager recorded: deadlines that fired (by the stage
    /// that ran out of time) and retries scheduled (by what caused them).
    pub fn recorded(&self, events: &[RunEvent]) {
        let mut cause = "other";
        for event in events {
            match event {
                RunEvent::TimedOut(e) => {
                    cause = "timeout";
                    let stage = e.stage.as_str();
                    self.with(|| counter!(DEADLINES, "stage" => stage).increment(1));
                }
                RunEvent::VmCreateFailed(e) => cause = class_name(e.class),
                RunEvent::ArtifactUnavailable(e) => cause = class_name(e.class),
                RunEvent::RetryScheduled(_) => {
                    self.with(|| counter!(RETRIES, "cause" => cause).increment(1));
                }
                _ => {}
            }
        }
    }

    /// Upkeep of the recorder: without a scrape, histogram samples would
    /// pile up until the next one. Call it every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text exposition: this process's counts, then `state`
    /// as gauges. The gauges go into a recorder made for this scrape, so a
    /// platform or status that is gone, or a part of the state that could
    /// not be read, is not shown with the value it had before.
    pub fn render(&self, state: &State) -> String {
        let scrape = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&scrape, || {
            describe_state();
            gauge!(STATE_READ).set(f64::from(u8::from(state.read)));
            for q in &state.queues {
                let platform = q.platform.clone();
                gauge!(QUEUE_RUNS, "platform" => platform.clone(), "status" => "queued")
                    .set(q.waiting as f64);
                gauge!(QUEUE_RUNS, "platform" => platform.clone(), "status" => "running")
                    .set(q.running as f64);
                gauge!(QUEUE_OLDEST, "platform" => platform).set(q.oldest_wait_seconds);
            }
            for (platform, outcome, count) in &state.runs {
                gauge!(RUNS, "platform" => platform.clone(), "outcome" => outcome.clone())
                    .set(*count as f64);
            }
            for (platform, status, count) in &state.vms {
                gauge!(VMS, "platform" => platform.clone(), "provider" => state.provider.clone(), "status" => status.clone())
                    .set(*count as f64);
            }
            for (model, events, seconds) in &state.lag {
                gauge!(LAG_EVENTS, "model" => model.clone()).set(*events as f64);
                gauge!(LAG_SECONDS, "model" => model.clone()).set(*seconds);
            }
            gauge!(MANAGERS_LEADER).set(f64::from(u8::from(state.managers_leader)));
            gauge!(READ_MODELS_APPLYING).set(f64::from(u8::from(state.read_models_applying)));
        });
        let mut text = self.handle.render();
        text.push_str(&scrape.handle().render());
        text
    }
}

fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Retryable => "retryable",
        ErrorClass::Quota => "quota",
        ErrorClass::Permanent => "permanent",
    }
}

/// The counts' descriptions, given once to this process's recorder.
fn describe() {
    describe_counter!(
        OUTSIDE_CALLS,
        "Calls to GitHub, the VM provider and artifact hosts, by service, operation and outcome (ok or the failure's class), retries included."
    );
    describe_histogram!(
        OUTSIDE_CALL_SECONDS,
        Unit::Seconds,
        "How long an outside call took, its retries included."
    );
    describe_counter!(
        DELIVERIES,
        "GitHub webhook deliveries answered, by outcome."
    );
    describe_counter!(REPORTS, "Runner reports accepted or refused.");
    describe_counter!(
        DEADLINES,
        "Deadlines that fired, by the stage that ran out of time."
    );
    describe_counter!(
        RETRIES,
        "Retries scheduled, by cause: timeout, retryable, quota, or other."
    );
}

/// The state gauges' descriptions, given to each scrape's recorder.
fn describe_state() {
    describe_gauge!(
        STATE_READ,
        "1 when this scrape could read the read models; 0 leaves out the queue, run, VM and lag gauges."
    );
    describe_gauge!(
        QUEUE_RUNS,
        "Runs in the queue per platform: queued (waiting) or running."
    );
    describe_gauge!(
        RUNS,
        "Runs ever queued per platform and outcome: pass, fail, error, cancelled, superseded, queued or running."
    );
    describe_gauge!(
        QUEUE_OLDEST,
        Unit::Seconds,
        "How long the longest-waiting run of a platform has waited."
    );
    describe_gauge!(
        VMS,
        "VMs not yet deleted, per platform, provider and status; status abandoned needs a person."
    );
    describe_gauge!(
        LAG_EVENTS,
        "Events in the log a read model has not applied yet."
    );
    describe_gauge!(
        LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest event a read model has not applied yet."
    );
    describe_gauge!(
        MANAGERS_LEADER,
        "1 when this process leads the process managers, 0 on a standby."
    );
    describe_gauge!(
        READ_MODELS_APPLYING,
        "1 when this process applies the read models, 0 when it follows another replica."
    );
}
