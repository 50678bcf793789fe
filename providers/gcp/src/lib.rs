//! The Google Compute Engine VM provider, on `google-cloud-compute-v1`:
//! [`GcpProvider`], made by [`GcpProvider::new`] from a [`GcpConfig`], implements
//! `sp_managers::provider::VmProvider` (chosen with `SP_VM_PROVIDER=gcp`).
//!
//! - `instances.insert` carries a `requestId` derived from the run attempt's
//!   idempotency key: GCP answers a repeated insert with the first one's
//!   operation, so a retried create never makes a second VM.
//! - The zone operation is waited for in a loop (the API's `wait` returns
//!   after at most two minutes by design), bounded by the caller's deadline.
//! - Errors are classified: capacity (`ZONE_RESOURCE_POOL_EXHAUSTED`,
//!   `STOCKOUT`, `RESOURCE_NOT_READY`), timeouts, 429 and 5xx are retryable;
//!   `QUOTA_EXCEEDED` is a quota failure (retried later); bad configuration is
//!   permanent. A 404 on delete counts as deleted.
//! - Every VM has `scheduling.maxRunDuration` with termination action DELETE,
//!   so the cloud removes it even if the platform never does. The runner gets
//!   its report URL and per-attempt credential as instance metadata; no
//!   service-account key is ever handed over.
//!
//! The client's retries are off: the platform's one mechanism
//! (`sp_managers::external`) owns retrying.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_compute_v1::client::{Instances, ZoneOperations};
use google_cloud_compute_v1::model::{
    AccessConfig, AttachedDisk, AttachedDiskInitializeParams, Instance, Metadata, NetworkInterface,
    Operation, Scheduling, access_config, instance, metadata, operation, scheduling,
};
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_gax::retry_policy::NeverRetry;
use serde::{Deserialize, Serialize};
use sp_managers::CallError;
use sp_managers::provider::{CreateVm, VmInfo, VmProvider, VmState};

/// Where and how VMs are made: the `[gcp]` table of the platform's settings.
/// Credentials come from Application Default Credentials (the platform's own
/// service account), never from the VMs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcpConfig {
    pub project: String,
    pub zone: String,
    /// e.g. `e2-standard-4`.
    pub machine_type: String,
    /// e.g. `projects/debian-cloud/global/images/family/debian-12`.
    pub image: String,
    /// e.g. `global/networks/default`.
    pub network: String,
    pub subnetwork: Option<String>,
    pub disk_size_gb: i64,
    /// Run at boot; it reads `report-url`, `run-id`, `attempt` and
    /// `runner-token` from the instance metadata and starts the runner.
    pub startup_script: String,
    /// Only for tests against a fake Compute Engine: the API's base URL.
    pub endpoint: Option<String>,
    /// Each HTTP request's timeout (whole seconds in settings, at least one).
    #[serde(rename = "request_timeout_secs", with = "secs")]
    pub request_timeout: Duration,
}

impl Default for GcpConfig {
    fn default() -> Self {
        GcpConfig {
            project: String::new(),
            zone: "us-central1-a".into(),
            machine_type: "e2-standard-4".into(),
            image: "projects/debian-cloud/global/images/family/debian-12".into(),
            network: "global/networks/default".into(),
            subnetwork: None,
            disk_size_gb: 50,
            startup_script: "#!/bin/sh\nmd() { curl -sf -H 'Metadata-Flavor: Google' \"http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1\"; }\nexec sample-runner --report-url \"$(md report-url)\" --token \"$(md runner-token)\"\n".into(),
            endpoint: None,
            request_timeout: Duration::from_secs(60),
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?.max(1)))
    }
}

#[derive(Debug, Clone)]
pub struct GcpProvider {
    instances: Instances,
    operations: ZoneOperations,
    config: GcpConfig,
}

/// Operation error codes worth another try: capacity comes back.
const RETRYABLE_CODES: &[&str] = &[
    "ZONE_RESOURCE_POOL_EXHAUSTED",
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    "STOCKOUT",
    "RESOURCE_NOT_READY",
    "RESOURCE_OPERATION_RATE_EXCEEDED",
    "INTERNAL_ERROR",
];

impl GcpProvider {
    /// A provider using Application Default Credentials, or anonymous ones
    /// against a test endpoint.
    pub async fn new(config: GcpConfig) -> Result<Self, String> {
        // Retries are ours (one outside-call mechanism), never the client's.
        let mut instances = Instances::builder().with_retry_policy(NeverRetry);
        let mut operations = ZoneOperations::builder().with_retry_policy(NeverRetry);
        if let Some(endpoint) = &config.endpoint {
            let anonymous = || google_cloud_auth::credentials::anonymous::Builder::new().build();
            instances = instances
                .with_endpoint(endpoint)
                .with_credentials(anonymous());
            operations = operations
                .with_endpoint(endpoint)
                .with_credentials(anonymous());
        }
        let (instances, operations) = (instances.build().await, operations.build().await);
        Ok(GcpProvider {
            instances: instances.map_err(|e| format!("Compute Engine client: {e}"))?,
            operations: operations.map_err(|e| format!("Compute Engine client: {e}"))?,
            config,
        })
    }

    fn instance(&self, request: &CreateVm) -> Instance {
        let zone = &self.config.zone;
        let mut items: Vec<metadata::Items> = request
            .metadata
            .iter()
            .map(|(k, v)| {
                metadata::Items::new()
                    .set_key(k.clone())
                    .set_value(v.clone())
            })
            .collect();
        items.push(
            metadata::Items::new()
                .set_key("startup-script")
                .set_value(self.config.startup_script.clone()),
        );
        let mut interface = NetworkInterface::new()
            .set_network(self.config.network.clone())
            .set_access_configs([AccessConfig::new()
                .set_name("External NAT")
                .set_type(access_config::Type::OneToOneNat)]);
        if let Some(subnetwork) = &self.config.subnetwork {
            interface = interface.set_subnetwork(subnetwork.clone());
        }
        Instance::new()
            .set_name(request.name.clone())
            .set_machine_type(format!(
                "zones/{zone}/machineTypes/{}",
                self.config.machine_type
            ))
            .set_labels(
                request
                    .labels
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            )
            .set_metadata(Metadata::new().set_items(items))
            .set_disks([AttachedDisk::new()
                .set_boot(true)
                .set_auto_delete(true)
                .set_initialize_params(
                    AttachedDiskInitializeParams::new()
                        .set_source_image(self.config.image.clone())
                        .set_disk_size_gb(self.config.disk_size_gb),
                )])
            .set_network_interfaces([interface])
            .set_scheduling(
                Scheduling::new()
                    .set_max_run_duration(
                        google_cloud_compute_v1::model::Duration::new().set_seconds(
                            i64::try_from(request.max_run_duration.as_secs()).unwrap_or(i64::MAX),
                        ),
                    )
                    .set_instance_termination_action(scheduling::InstanceTerminationAction::Delete),
            )
    }

    /// Wait until the operation is DONE (the caller's timeout bounds this),
    /// then turn its error, if any, into a classified one.
    async fn finish(&self, mut op: Operation) -> Result<(), CallError> {
        loop {
            if op.status == Some(operation::Status::Done) {
                return operation_outcome(&op);
            }
            let name = op
                .name
                .clone()
                .ok_or_else(|| CallError::retryable("the operation has no name"))?;
            op = self
                .operations
                .wait()
                .set_project(self.config.project.clone())
                .set_zone(self.config.zone.clone())
                .set_operation(name)
                .with_attempt_timeout(self.config.request_timeout)
                .send()
                .await
                .map_err(classify)?;
        }
    }

    async fn list_page(
        &self,
        filter: &str,
        page_token: Option<String>,
    ) -> Result<(Vec<Instance>, Option<String>), CallError> {
        let list = self
            .instances
            .list()
            .set_project(self.config.project.clone())
            .set_zone(self.config.zone.clone())
            .set_filter(filter.to_string())
            .set_or_clear_page_token(page_token)
            .with_attempt_timeout(self.config.request_timeout)
            .send()
            .await
            .map_err(classify)?;
        let next = list.next_page_token.filter(|t| !t.is_empty());
        Ok((list.items, next))
    }
}

/// The request id GCP deduplicates inserts by: a UUID made from our key.
fn request_id(idempotency_key: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7d3e_2a41_0b9c_4f5e_8a16_c2d4_e5f6_0718);
    uuid::Uuid::new_v5(&NAMESPACE, idempotency_key.as_bytes()).to_string()
}

fn operation_outcome(op: &Operation) -> Result<(), CallError> {
    let Some(error) = &op.error else {
        return Ok(());
    };
    let codes: Vec<&str> = error
        .errors
        .iter()
        .filter_map(|e| e.code.as_deref())
        .collect();
    let messages: Vec<&str> = error
        .errors
        .iter()
        .filter_map(|e| e.message.as_deref())
        .collect();
    let message = format!("{}: {}", codes.join(", "), messages.join("; "));
    if codes.contains(&"QUOTA_EXCEEDED") {
        return Err(CallError::quota(message));
    }
    if codes.iter().any(|c| RETRYABLE_CODES.contains(c)) {
        return Err(CallError::retryable(message));
    }
    match op.http_error_status_code {
        Some(code) if code >= 500 || code == 429 => Err(CallError::retryable(message)),
        _ => Err(CallError::permanent(message)),
    }
}

/// Classify a failed API call.
fn classify(e: google_cloud_gax::error::Error) -> CallError {
    let message = e.to_string();
    if e.is_timeout() || e.is_transport() || e.is_io() {
        return CallError::retryable(message);
    }
    let upper = message.to_ascii_uppercase();
    match e.http_status_code() {
        Some(403 | 429)
            if upper.contains("QUOTA") || upper.contains("RATE") && upper.contains("LIMIT") =>
        {
            CallError::quota(message)
        }
        Some(429) => CallError::retryable(message),
        Some(code) if code >= 500 => CallError::retryable(message),
        Some(_) => CallError::permanent(message),
        None => CallError::retryable(message),
    }
}

fn state(instance: &Instance) -> VmState {
    match &instance.status {
        Some(instance::Status::Running) => VmState::Running,
        Some(
            instance::Status::Stopping
            | instance::Status::Suspending
            | instance::Status::PendingStop,
        ) => VmState::Stopping,
        Some(
            instance::Status::Terminated | instance::Status::Stopped | instance::Status::Suspended,
        ) => VmState::Terminated,
        _ => VmState::Provisioning,
    }
}

fn info(instance: Instance) -> VmInfo {
    let state = state(&instance);
    VmInfo {
        name: instance.name.unwrap_or_default(),
        labels: instance.labels.into_iter().collect::<BTreeMap<_, _>>(),
        state,
    }
}

#[async_trait]
impl VmProvider for GcpProvider {
    async fn create(&self, request: &CreateVm) -> Result<VmInfo, CallError> {
        let inserted = self
            .instances
            .insert()
            .set_project(self.config.project.clone())
            .set_zone(self.config.zone.clone())
            .set_request_id(request_id(&request.idempotency_key))
            .set_body(self.instance(request))
            .with_idempotency(true)
            .with_attempt_timeout(self.config.request_timeout)
            .send()
            .await;
        match inserted {
            Ok(op) => self.finish(op).await?,
            // The VM exists: made by an earlier try whose request id GCP no
            // longer remembers.
            Err(e) if e.http_status_code() == Some(409) => {}
            Err(e) => return Err(classify(e)),
        }
        Ok(VmInfo {
            name: request.name.clone(),
            labels: request.labels.clone(),
            state: VmState::Provisioning,
        })
    }

    async fn delete(&self, name: &str) -> Result<(), CallError> {
        let deleted = self
            .instances
            .delete()
            .set_project(self.config.project.clone())
            .set_zone(self.config.zone.clone())
            .set_instance(name.to_string())
            .with_attempt_timeout(self.config.request_timeout)
            .send()
            .await;
        match deleted {
            Ok(op) => match self.finish(op).await {
                Err(e) if e.message.contains("RESOURCE_NOT_FOUND") => Ok(()),
                other => other,
            },
            Err(e) if e.http_status_code() == Some(404) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VmInfo>, CallError> {
        let filter = labels
            .iter()
            .map(|(k, v)| format!("labels.{k} = \"{v}\""))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut vms = Vec::new();
        let mut page = None;
        loop {
            let (items, next) = self.list_page(&filter, page).await?;
            vms.extend(items.into_iter().map(info));
            match next {
                Some(token) => page = Some(token),
                None => return Ok(vms),
            }
        }
    }
}
