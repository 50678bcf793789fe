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
//! - Each platform may have its own VM template (`[gcp.templates.NAME]`):
//!   image, machine type, disk, and the startup script under the metadata
//!   key its OS runs (`windows-startup-script-ps1` on Windows). The scripts
//!   shipped are in `startup/`.
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
    /// Run at boot; it reads `report-url`, `runner-token` and `runner-url`
    /// from the instance metadata, starts the runner, then shuts down.
    pub startup_script: String,
    /// The metadata key the image's agent runs `startup_script` from:
    /// `startup-script` on Linux, `windows-startup-script-ps1` on Windows.
    pub startup_script_key: String,
    /// Where the VM downloads the runner (`runner-url` in its metadata);
    /// unset, the image must have `sample-runner` on its PATH.
    pub runner_url: Option<String>,
    /// Per platform, what differs from the settings above: a Windows
    /// platform's image, machine type, disk, script and its key. The
    /// `windows` platform has a Windows template unless the settings say
    /// otherwise.
    pub templates: BTreeMap<String, VmTemplate>,
    /// Only for tests against a fake Compute Engine: the API's base URL.
    pub endpoint: Option<String>,
    /// Each HTTP request's timeout (whole seconds in settings, at least one).
    #[serde(rename = "request_timeout_secs", with = "secs")]
    pub request_timeout: Duration,
}

/// A platform's VM, where it differs from the `[gcp]` defaults:
/// `[gcp.templates.PLATFORM]` in the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmTemplate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size_gb: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_script: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_script_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_url: Option<String>,
}

/// The startup scripts shipped with the platform (`providers/gcp/startup/`).
pub const LINUX_STARTUP_SCRIPT: &str = include_str!("../startup/linux.sh");
pub const WINDOWS_STARTUP_SCRIPT: &str = include_str!("../startup/windows.ps1");

/// A VM as one platform's template makes it: the defaults with the
/// template's differences.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    image: String,
    machine_type: String,
    disk_size_gb: i64,
    startup_script: String,
    startup_script_key: String,
    runner_url: Option<String>,
}

/// The metadata keys Compute Engine's guest agents run a script from.
const STARTUP_SCRIPT_KEYS: &[&str] = &[
    "startup-script",
    "windows-startup-script-ps1",
    "windows-startup-script-cmd",
    "windows-startup-script-bat",
];

impl GcpConfig {
    /// A script under a key no agent reads would never run: the VM would
    /// boot and sit there until its boot deadline. Said at start instead.
    pub fn check(&self) -> Result<(), String> {
        let platforms = std::iter::once(None).chain(self.templates.keys().map(Some));
        for platform in platforms {
            let key = match platform {
                Some(p) => self.resolved(p).startup_script_key,
                None => self.startup_script_key.clone(),
            };
            if !STARTUP_SCRIPT_KEYS.contains(&key.as_str()) {
                let place = platform
                    .map(|p| format!("[gcp.templates.{p}]"))
                    .unwrap_or_else(|| "[gcp]".into());
                return Err(format!(
                    "{place} startup_script_key {key:?}: Compute Engine runs a startup script \
                     only from {}",
                    STARTUP_SCRIPT_KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn resolved(&self, platform: &str) -> Resolved {
        let t = self.templates.get(platform).cloned().unwrap_or_default();
        // A Windows VM cannot run the Linux runner the defaults name.
        let windows = t
            .startup_script_key
            .as_deref()
            .is_some_and(|key| key.starts_with("windows-"));
        Resolved {
            image: t.image.unwrap_or_else(|| self.image.clone()),
            machine_type: t.machine_type.unwrap_or_else(|| self.machine_type.clone()),
            disk_size_gb: t.disk_size_gb.unwrap_or(self.disk_size_gb),
            startup_script: t
                .startup_script
                .unwrap_or_else(|| self.startup_script.clone()),
            startup_script_key: t
                .startup_script_key
                .unwrap_or_else(|| self.startup_script_key.clone()),
            runner_url: match windows {
                true => t.runner_url,
                false => t.runner_url.or_else(|| self.runner_url.clone()),
            },
        }
    }
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
            startup_script: LINUX_STARTUP_SCRIPT.into(),
            startup_script_key: "startup-script".into(),
            runner_url: None,
            templates: BTreeMap::from([(
                "windows".to_string(),
                VmTemplate {
                    image: Some("projects/windows-cloud/global/images/family/windows-2022".into()),
                    disk_size_gb: Some(64),
                    startup_script: Some(WINDOWS_STARTUP_SCRIPT.into()),
                    startup_script_key: Some("windows-startup-script-ps1".into()),
                    ..VmTemplate::default()
                },
            )]),
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
        config.check()?;
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
        let vm = self.config.resolved(&request.platform);
        let mut metadata = request.metadata.clone();
        if let Some(url) = &vm.runner_url {
            metadata.insert("runner-url".into(), url.clone());
        }
        metadata.insert(vm.startup_script_key.clone(), vm.startup_script.clone());
        let items: Vec<metadata::Items> = metadata
            .into_iter()
            .map(|(k, v)| metadata::Items::new().set_key(k).set_value(v))
            .collect();
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
            .set_machine_type(format!("zones/{zone}/machineTypes/{}", vm.machine_type))
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
                        .set_source_image(vm.image)
                        .set_disk_size_gb(vm.disk_size_gb),
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
        let vm = self.config.resolved(&request.platform);
        if vm.startup_script_key.starts_with("windows-") && vm.runner_url.is_none() {
            // Its script downloads the runner; without a URL the VM would
            // boot, fail, and leave the run to its boot deadline.
            return Err(CallError::permanent(format!(
                "[gcp.templates.{}] has no runner_url: a Windows VM downloads a Windows build \
                 of sample-runner from there",
                request.platform
            )));
        }
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
