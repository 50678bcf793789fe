//! The GCP provider: the real `google-cloud-compute-v1` client against a fake
//! Compute Engine on loopback.

use std::collections::BTreeMap;
use std::time::Duration;

use sp_domain::ErrorClass;
use sp_gcp::{GcpConfig, GcpProvider};
use sp_managers::provider::{self, CreateVm, VmProvider, VmState};
use sp_tests::fake_compute::{FakeCompute, Mode};

fn config(fake: &FakeCompute) -> GcpConfig {
    GcpConfig {
        project: "ccx-ci".into(),
        startup_script: "#!/bin/sh\necho start the runner\n".into(),
        endpoint: Some(fake.url.clone()),
        request_timeout: Duration::from_secs(5),
        ..GcpConfig::default()
    }
}

fn request(name: &str) -> CreateVm {
    CreateVm {
        name: name.into(),
        platform: "linux".into(),
        idempotency_key: format!("run-1-{name}"),
        labels: provider::labels("6f2d3a7e-0000-4000-8000-000000000001", 1, "linux"),
        metadata: BTreeMap::from([
            (
                "report-url".to_string(),
                "https://ci.example/runner/v1/runs/x".to_string(),
            ),
            ("runner-token".to_string(), "per-attempt-secret".to_string()),
        ]),
        max_run_duration: Duration::from_secs(3 * 3600),
    }
}

async fn provider(fake: &FakeCompute) -> GcpProvider {
    GcpProvider::new(config(fake)).await.expect("client")
}

#[tokio::test]
async fn create_makes_one_vm_with_labels_metadata_and_a_backstop() {
    let fake = FakeCompute::start(Mode::Succeed).await;
    let gcp = provider(&fake).await;
    gcp.create(&request("sp-linux-aaa-a1"))
        .await
        .expect("create");
    // A retried create (lost reply) carries the same requestId: still one VM.
    gcp.create(&request("sp-linux-aaa-a1"))
        .await
        .expect("retried create");
    let inserts = fake.inserts();
    assert_eq!(inserts.len(), 2);
    assert_eq!(inserts[0].0, inserts[1].0, "the same request id");
    assert!(
        uuid::Uuid::parse_str(&inserts[0].0).is_ok(),
        "GCP wants a UUID request id"
    );
    assert_eq!(fake.instance_names(), vec!["sp-linux-aaa-a1"]);

    let vm = fake.instance("sp-linux-aaa-a1").expect("instance");
    assert_eq!(
        vm["labels"]["sp-run"],
        "6f2d3a7e-0000-4000-8000-000000000001"
    );
    assert_eq!(vm["labels"]["sample-platform"], "managed");
    assert!(
        vm["machineType"]
            .as_str()
            .unwrap_or("")
            .ends_with("machineTypes/e2-standard-4"),
        "{vm}"
    );
    assert_eq!(vm["scheduling"]["instanceTerminationAction"], "DELETE");
    assert_eq!(
        vm["scheduling"]["maxRunDuration"]["seconds"], "10800",
        "{vm}"
    );
    let items = metadata_items(&vm);
    let item = |k: &str| items.get(k).map(String::as_str);
    assert_eq!(
        item("report-url"),
        Some("https://ci.example/runner/v1/runs/x")
    );
    assert_eq!(item("runner-token"), Some("per-attempt-secret"));
    assert!(item("startup-script").is_some());
    assert!(
        vm["serviceAccounts"].as_array().is_none_or(Vec::is_empty),
        "no service account is attached"
    );

    let listed = gcp
        .list(&BTreeMap::from([(
            "sample-platform".to_string(),
            "managed".to_string(),
        )]))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, VmState::Running);
    assert_eq!(listed[0].label("sp-attempt"), Some("1"));

    gcp.delete("sp-linux-aaa-a1").await.expect("delete");
    assert!(fake.instance_names().is_empty());
    gcp.delete("sp-linux-aaa-a1")
        .await
        .expect("a 404 counts as deleted");
}

/// The metadata items of an inserted instance, by key.
fn metadata_items(vm: &serde_json::Value) -> BTreeMap<String, String> {
    vm["metadata"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["key"].as_str().unwrap_or_default().to_string(),
                i["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_windows_platform_gets_its_template_image_and_powershell_script() {
    let fake = FakeCompute::start(Mode::Succeed).await;
    let mut config = GcpConfig {
        runner_url: Some("https://ci.example/downloads/sample-runner".into()),
        ..config(&fake)
    };
    // The settings change fields of the shipped Windows template.
    let template = config
        .templates
        .get_mut("windows")
        .expect("a Windows template ships");
    template.machine_type = Some("n2-standard-8".into());
    template.runner_url = Some("https://ci.example/downloads/sample-runner.exe".into());
    let gcp = GcpProvider::new(config).await.expect("client");

    let windows = CreateVm {
        platform: "windows".into(),
        ..request("sp-windows-aaa-a1")
    };
    gcp.create(&windows).await.expect("create the Windows VM");
    gcp.create(&request("sp-linux-aaa-a1"))
        .await
        .expect("create the Linux VM");

    let vm = fake.instance("sp-windows-aaa-a1").expect("instance");
    assert_eq!(
        vm["disks"][0]["initializeParams"]["sourceImage"],
        "projects/windows-cloud/global/images/family/windows-2022",
        "{vm}"
    );
    assert_eq!(vm["disks"][0]["initializeParams"]["diskSizeGb"], "64");
    assert!(
        vm["machineType"]
            .as_str()
            .unwrap_or("")
            .ends_with("/machineTypes/n2-standard-8"),
        "{vm}"
    );
    let items = metadata_items(&vm);
    assert_eq!(
        items.get("windows-startup-script-ps1").map(String::as_str),
        Some(sp_gcp::WINDOWS_STARTUP_SCRIPT)
    );
    assert!(!items.contains_key("startup-script"), "{items:?}");
    assert_eq!(
        items.get("runner-url").map(String::as_str),
        Some("https://ci.example/downloads/sample-runner.exe")
    );
    assert_eq!(
        items.get("runner-token").map(String::as_str),
        Some("per-attempt-secret")
    );
    // The script reads the attempt's metadata, downloads the runner, runs
    // it and shuts down; it holds no credential of its own.
    for part in ["runner-url", "report-url", "runner-token", "Stop-Computer"] {
        assert!(sp_gcp::WINDOWS_STARTUP_SCRIPT.contains(part), "{part}");
    }

    // Linux keeps the defaults.
    let linux = fake.instance("sp-linux-aaa-a1").expect("instance");
    assert!(
        linux["disks"][0]["initializeParams"]["sourceImage"]
            .as_str()
            .unwrap_or("")
            .contains("debian"),
        "{linux}"
    );
    let items = metadata_items(&linux);
    assert!(items.contains_key("startup-script"), "{items:?}");
    assert!(!items.contains_key("windows-startup-script-ps1"));
    assert_eq!(
        items.get("runner-url").map(String::as_str),
        Some("https://ci.example/downloads/sample-runner")
    );
}

#[tokio::test]
async fn a_windows_vm_without_its_own_runner_url_is_refused_before_insert() {
    let fake = FakeCompute::start(Mode::Succeed).await;
    // The Linux runner's URL is no use to a Windows VM.
    let config = GcpConfig {
        runner_url: Some("https://ci.example/downloads/sample-runner".into()),
        ..config(&fake)
    };
    let gcp = GcpProvider::new(config).await.expect("client");
    let windows = CreateVm {
        platform: "windows".into(),
        ..request("sp-windows-bbb-a1")
    };
    let refused = gcp.create(&windows).await.expect_err("refused");
    assert_eq!(refused.class, ErrorClass::Permanent, "{refused:?}");
    assert!(
        refused
            .message
            .contains("[gcp.templates.windows] has no runner_url"),
        "{refused:?}"
    );
    assert!(
        fake.inserts().is_empty(),
        "nothing was asked of Compute Engine"
    );
}

#[tokio::test]
async fn a_startup_script_key_no_agent_reads_is_refused_at_start() {
    let fake = FakeCompute::start(Mode::Succeed).await;
    let mut config = config(&fake);
    config
        .templates
        .get_mut("windows")
        .expect("windows")
        .startup_script_key = Some("windows-startup-script".into());
    let refused = GcpProvider::new(config).await.expect_err("refused");
    assert!(
        refused.contains("[gcp.templates.windows]")
            && refused.contains("windows-startup-script-ps1"),
        "{refused}"
    );
}

#[tokio::test]
async fn each_error_class_is_classified() {
    let cases = [
        (
            Mode::OperationError("ZONE_RESOURCE_POOL_EXHAUSTED"),
            ErrorClass::Retryable,
        ),
        (Mode::OperationError("STOCKOUT"), ErrorClass::Retryable),
        (
            Mode::OperationError("RESOURCE_NOT_READY"),
            ErrorClass::Retryable,
        ),
        (Mode::OperationError("QUOTA_EXCEEDED"), ErrorClass::Quota),
        (
            Mode::OperationError("INVALID_FIELD_VALUE"),
            ErrorClass::Permanent,
        ),
        (Mode::HttpError(503, "Backend Error"), ErrorClass::Retryable),
        (
            Mode::HttpError(500, "Internal Error"),
            ErrorClass::Retryable,
        ),
        (
            Mode::HttpError(403, "Quota 'CPUS' exceeded. Limit: 24.0"),
            ErrorClass::Quota,
        ),
        (
            Mode::HttpError(400, "Invalid value for field 'resource.machineType'"),
            ErrorClass::Permanent,
        ),
    ];
    for (mode, class) in cases {
        let fake = FakeCompute::start(mode.clone()).await;
        let e = provider(&fake)
            .await
            .create(&request("sp-linux-bbb-a1"))
            .await
            .expect_err("fails");
        assert_eq!(e.class, class, "{mode:?}: {e}");
        assert!(!e.message.is_empty());
        assert_eq!(fake.inserts().len(), 1, "{mode:?}: one insert per try");
    }
}

/// The provider's own request timeout ends a call that hangs: the caller's
/// bound here is far longer, so only the provider can have answered.
async fn hang_is_ended_by_the_providers_timeout(mode: Mode) {
    let fake = FakeCompute::start(mode.clone()).await;
    let mut c = config(&fake);
    c.request_timeout = Duration::from_millis(300);
    let gcp = GcpProvider::new(c).await.expect("client");
    let vm = request("sp-linux-ccc-a1");
    let e = tokio::time::timeout(Duration::from_secs(20), gcp.create(&vm))
        .await
        .unwrap_or_else(|_| panic!("{mode:?}: the provider ignored its request timeout"))
        .expect_err("a hang fails");
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert_eq!(fake.inserts().len(), 1);
}

#[tokio::test]
async fn a_hanging_api_times_out_as_retryable() {
    hang_is_ended_by_the_providers_timeout(Mode::Hang).await;
}

#[tokio::test]
async fn a_wait_for_the_operation_that_hangs_times_out_as_retryable() {
    hang_is_ended_by_the_providers_timeout(Mode::WaitHangs).await;
}

#[tokio::test]
async fn an_operation_that_never_finishes_is_bounded_by_the_caller() {
    let fake = FakeCompute::start(Mode::NeverDone).await;
    let gcp = provider(&fake).await;
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(2),
        gcp.create(&request("sp-linux-ddd-a1")),
    )
    .await;
    assert!(
        outcome.is_err(),
        "still waiting for the operation when the deadline came"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(fake.inserts().len(), 1, "waiting never inserts again");
}

// ---------------------------------------------------------------------------
// The platform with the GCP provider pointed at the fake.
// ---------------------------------------------------------------------------

mod platform {
    use serde_json::Value;
    use sp_tests::{Backend, TestPlatform, eventually};

    use super::*;

    async fn start(backend: Backend, fake: &FakeCompute) -> TestPlatform {
        start_with_create_deadline(backend, fake, 2).await
    }

    async fn start_with_create_deadline(
        backend: Backend,
        fake: &FakeCompute,
        vm_create_secs: i64,
    ) -> TestPlatform {
        let endpoint = fake.url.clone();
        TestPlatform::start_with(backend, move |mut s| {
            s.managers = true;
            s.platforms = vec!["linux".into()];
            s.vm_provider = "gcp".into();
            s.gcp.project = "ccx-ci".into();
            s.gcp.endpoint = Some(endpoint);
            s.gcp.request_timeout = std::time::Duration::from_secs(5);
            s.policy.deadlines.vm_create = chrono::Duration::seconds(vm_create_secs);
            s.policy.retry.max_attempts = 2;
            s.policy.retry.base_delay = chrono::Duration::seconds(1);
            s
        })
        .await
    }

    async fn never_done_operations_time_out_each_attempt(backend: Backend) {
        let fake = FakeCompute::start(Mode::NeverDone).await;
        let p = start(backend, &fake).await;
        let run = p.push("gcp-1", '9').await;
        let events = p.until(&run, "Failed").await;
        let timed_out: Vec<&Value> = events
            .iter()
            .filter(|(t, _)| t == "TimedOut")
            .map(|(_, d)| d)
            .collect();
        assert_eq!(timed_out.len(), 2, "{events:?}");
        assert_eq!(timed_out[0]["stage"], "provisioning_vm");
        let failed = &events
            .iter()
            .rev()
            .find(|(t, _)| t == "Failed")
            .expect("failed")
            .1;
        let message = failed["reason"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("waiting for the cloud to create the VM"),
            "{message}"
        );

        // Exactly one insert per attempt, each with its own request id.
        let inserts = fake.inserts();
        assert_eq!(inserts.len(), 2, "{inserts:?}");
        assert_ne!(inserts[0].0, inserts[1].0);
        assert!(
            inserts[0].1.ends_with("-a1") && inserts[1].1.ends_with("-a2"),
            "{inserts:?}"
        );
        // Both VMs were asked to go; a 404 counts as deleted.
        eventually("both VMs are recorded deleted", || async {
            let e = p.run_events(&run).await;
            (e.iter().filter(|(t, _)| t == "VmDeleted").count() == 2).then_some(())
        })
        .await;
    }

    async fn capacity_errors_retry_and_quota_waits_longer(backend: Backend) {
        let fake = FakeCompute::start(Mode::OperationError("ZONE_RESOURCE_POOL_EXHAUSTED")).await;
        let p = start(backend, &fake).await;
        let run = p.push("gcp-2", '9').await;
        let events = p.until(&run, "RetryScheduled").await;
        let failed = &events
            .iter()
            .find(|(t, _)| t == "VmCreateFailed")
            .expect("recorded")
            .1;
        assert_eq!(failed["class"], "retryable");
        assert!(
            failed["message"]
                .as_str()
                .unwrap_or("")
                .contains("ZONE_RESOURCE_POOL_EXHAUSTED")
        );

        fake.set_mode(Mode::OperationError("QUOTA_EXCEEDED"));
        let events = eventually("a quota error is recorded", || async {
            let e = p.run_events(&run).await;
            e.iter()
                .any(|(t, d)| t == "VmCreateFailed" && d["class"] == "quota")
                .then_some(e)
        })
        .await;
        let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
        // The failed VM's deletion may be recorded after the run's end.
        assert_eq!(
            types.iter().rev().find(|t| !t.starts_with("Vm")),
            Some(&"Failed"),
            "the last attempt gives up: {types:?}"
        );
        let reason = events
            .iter()
            .rfind(|(t, _)| t == "Failed")
            .map(|(_, d)| d["reason"]["message"].clone())
            .unwrap_or_default();
        assert!(
            reason.as_str().unwrap_or("").contains("QUOTA_EXCEEDED"),
            "{reason}"
        );
        // It could not be tested: an error, not a failed test.
        eventually("the run reads as an error", || async {
            let r = p
                .query(
                    "query($id: ID!) { run(id: $id) { outcome } }",
                    serde_json::json!({ "id": run }),
                )
                .await;
            (r["run"]["outcome"] == "ERROR").then_some(())
        })
        .await;
    }

    /// The undo that cannot finish: a VM the cloud will not delete is left
    /// to a person, visibly, and forgotten once a person has deleted it.
    async fn a_vm_that_will_not_delete_needs_a_human(backend: Backend) {
        let fake = FakeCompute::start(Mode::Succeed).await;
        let p = start_with_create_deadline(backend, &fake, 60).await;
        let run = p.push("gcp-stuck", '8').await;
        let events = p.until(&run, "VmCreated").await;
        let vm = events
            .iter()
            .find(|(t, _)| t == "VmCreated")
            .and_then(|(_, d)| d["vm_name"].as_str().map(String::from))
            .expect("the VM's name");
        fake.refuse_deletes(403, "Required 'compute.instances.delete' permission");
        let operator = p.token("ops", &["operate"]).await;
        let cancelled = p
            .graphql(
                "mutation($id: ID!) { cancelRun(id: $id, reason: \"wrong commit\") }",
                serde_json::json!({ "id": run }),
                Some(&operator),
            )
            .await;
        assert_eq!(cancelled["data"]["cancelRun"], true, "{cancelled}");
        let events = p.until(&run, "VmAbandoned").await;
        let abandoned = &events
            .iter()
            .find(|(t, _)| t == "VmAbandoned")
            .expect("abandoned")
            .1;
        assert_eq!(abandoned["vm_name"], vm.as_str());
        let reason = abandoned["reason"].as_str().unwrap_or_default().to_string();
        assert!(reason.contains("permission"), "{reason}");

        // /readyz and GraphQL say which VM and why; the replica stays ready.
        let listed = eventually("/readyz lists the VM", || async {
            let (status, body) = p.readyz().await;
            let vms = body["checks"]["vms:needs-a-human"].as_array()?.clone();
            (status == 200 && vms.len() == 1).then_some(vms)
        })
        .await;
        assert_eq!(listed[0]["vm"], vm.as_str());
        assert_eq!(listed[0]["run"], run.as_str());
        assert!(
            listed[0]["action"]
                .as_str()
                .unwrap_or("")
                .contains("by hand"),
            "{listed:?}"
        );
        let q = p
            .query(
                "{ abandonedVms { vmName runId platform reason since } }",
                serde_json::json!({}),
            )
            .await;
        assert_eq!(q["abandonedVms"][0]["vmName"], vm.as_str(), "{q}");
        assert!(q["abandonedVms"][0]["since"].is_string(), "{q}");

        // Not retried silently: reconciliation passes (every second here)
        // leave it alone.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let failures = p
            .run_events(&run)
            .await
            .iter()
            .filter(|(t, _)| t == "VmDeleteFailed")
            .count();
        assert_eq!(failures, 1, "a permanent refusal is not tried again");

        // A person deletes it; the platform notices and forgets it.
        fake.remove_instance(&vm);
        p.until(&run, "VmDeleted").await;
        eventually("/readyz no longer lists it", || async {
            let (_, body) = p.readyz().await;
            body["checks"]["vms:needs-a-human"]
                .as_array()?
                .is_empty()
                .then_some(())
        })
        .await;
    }

    async fn a_cancelled_run_does_not_wait_out_its_vm_create(backend: Backend) {
        let fake = FakeCompute::start(Mode::NeverDone).await;
        // The cloud would be waited on for a minute.
        let p = start_with_create_deadline(backend, &fake, 60).await;
        let run = p.push("gcp-cancel", '9').await;
        eventually("the insert reaches the cloud", || async {
            (!fake.inserts().is_empty()).then_some(())
        })
        .await;
        let operator = p.token("ops", &["operate"]).await;
        let cancelled = p
            .graphql(
                "mutation($id: ID!) { cancelRun(id: $id, reason: \"wrong commit\") }",
                serde_json::json!({ "id": run }),
                Some(&operator),
            )
            .await;
        assert_eq!(cancelled["data"]["cancelRun"], true, "{cancelled}");
        // Within eventually's ten seconds, not the create's sixty.
        eventually(
            "the VM is deleted while its create was under way",
            || async {
                let e = p.run_events(&run).await;
                e.iter().any(|(t, _)| t == "VmDeleted").then_some(())
            },
        )
        .await;
        let types: Vec<String> = p
            .run_events(&run)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert!(
            !types
                .iter()
                .any(|t| t == "VmCreated" || t == "VmCreateFailed"),
            "the abandoned create records nothing: {types:?}"
        );
        assert_eq!(fake.inserts().len(), 1, "one insert, never repeated");
    }

    sp_tests::on_both_backends!(
        never_done_operations_time_out_each_attempt,
        capacity_errors_retry_and_quota_waits_longer,
        a_cancelled_run_does_not_wait_out_its_vm_create,
        a_vm_that_will_not_delete_needs_a_human,
    );
}
