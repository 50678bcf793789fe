//! The real `sample-platform` binary, started as a user would, over real HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sp_eventstore::testing::TestDb;

const BINARY: &str = env!("CARGO_BIN_EXE_sample-platform");

/// A running `sample-platform serve`, killed when dropped; its log is kept
/// and printed if the test fails.
struct Running {
    child: Child,
    base: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Running {
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("SP_LISTEN", "127.0.0.1:0")
            .env("SP_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start sample-platform");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.clone());
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(address);
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the platform logs the address it listens on");
        Running {
            child,
            base: format!("http://{address}"),
            log,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn wait_ready(&self) -> String {
        let start = Instant::now();
        loop {
            let (status, body) = self.get("/readyz").await;
            if status == 200 {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "not ready after a minute: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Running {
    /// SIGKILL: no shutdown, no cleanup.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn deliver_push(&self, delivery: &str, after: char) -> String {
        let payload = serde_json::json!({
            "ref": "refs/heads/master",
            "before": "1".repeat(40),
            "after": after.to_string().repeat(40),
            "repository": { "full_name": "CCExtractor/ccextractor", "default_branch": "master" },
            "sender": { "login": "dev" }
        })
        .to_string();
        let signature = sp_api::github::signature::sign(SECRET.as_bytes(), payload.as_bytes());
        let response = reqwest::Client::new()
            .post(format!("{}/webhooks/github", self.base))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", signature)
            .body(payload)
            .send()
            .await
            .expect("deliver");
        assert_eq!(response.status(), 202);
        let body: serde_json::Value = response.json().await.expect("json");
        body["runs"][0].as_str().expect("a run").to_string()
    }

    async fn run_stage(&self, run: &str) -> Option<String> {
        let response: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .json(&serde_json::json!({
                "query": "query($id: ID!) { run(id: $id) { stage } }",
                "variables": { "id": run }
            }))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        response["data"]["run"]["stage"].as_str().map(String::from)
    }

    async fn wait_stage(&self, run: &str, stage: &str) {
        let start = Instant::now();
        while self.run_stage(run).await.as_deref() != Some(stage) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "run {run} never reached {stage}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn managers_role(&self) -> String {
        let body: serde_json::Value = match reqwest::get(format!("{}/readyz", self.base)).await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        body["checks"]["managers"]["role"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

const SECRET: &str = "binary-test-secret";

/// A configuration file for a platform with managers, slow local VM
/// creation (so a kill can land between the request and the creation), and
/// its own deployment name.
fn config(dir: &Path, deployment: &str) -> std::path::PathBuf {
    let path = dir.join("sp.toml");
    let toml = format!(
        "deployment = \"{deployment}\"\n\
         github_webhook_secret = \"{SECRET}\"\n\
         platforms = [\"linux\"]\n\
         local_vm_dir = \"{}\"\n\
         local_vm_command = \"sleep 120\"\n\
         local_vm_create_delay_ms = 3000\n\
         vm_capacity = 5\n\
         reconcile_every_secs = 1\n",
        dir.join("vms").display()
    );
    std::fs::write(&path, toml).expect("write the configuration");
    path
}

/// Stop every local VM a test left behind.
async fn delete_local_vms(dir: &Path) {
    use sp_managers::VmProvider;
    let provider = sp_managers::local::LocalProvider::new(sp_managers::local::LocalConfig {
        state_dir: dir.join("vms"),
        command: vec![],
        create_delay: Duration::ZERO,
    });
    for vm in provider.list(&Default::default()).await.unwrap_or_default() {
        let _ = provider.delete(&vm.name).await;
    }
}

/// VM directories (one per VM) and their pids.
fn local_vms(dir: &Path) -> Vec<(String, Option<String>)> {
    let Ok(entries) = std::fs::read_dir(dir.join("vms")) else {
        return vec![];
    };
    let mut vms: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let pid = std::fs::read_to_string(e.path().join("pid")).ok();
            (e.file_name().to_string_lossy().to_string(), pid)
        })
        .collect();
    vms.sort();
    vms
}

async fn killed_between_vm_request_and_creation(database_url: Option<String>, deployment: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), deployment);
    let config = config.to_string_lossy().to_string();
    let mut env = vec![("SP_CONFIG", config.as_str())];
    if let Some(url) = &database_url {
        env.push(("SP_DATABASE_URL", url.as_str()));
    }
    let mut first = Running::start(dir.path(), &env);
    first.wait_ready().await;
    let run = first.deliver_push("kill-1", '2').await;
    first.wait_stage(&run, "provisioning_vm").await;
    // The VM's process starts at once; its creation is confirmed 3 s later.
    let start = Instant::now();
    while !local_vms(dir.path()).iter().any(|(_, pid)| pid.is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the VM never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let before = local_vms(dir.path());
    assert_eq!(before.len(), 1, "{before:?}");

    let restarted_at = chrono::Utc::now();
    let second = Running::start(dir.path(), &env);
    second.wait_ready().await;
    second.wait_stage(&run, "booting").await;
    // The killed instance never recorded the creation; the new one did, once.
    let trail: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/graphql", second.base))
        .json(&serde_json::json!({
            "query": "query($id: ID!) { auditTrail(runId: $id) { type recordedAt } }",
            "variables": { "id": run }
        }))
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("json");
    let created: Vec<chrono::DateTime<chrono::Utc>> = trail["data"]["auditTrail"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "VmCreated")
        .filter_map(|e| e["recordedAt"].as_str()?.parse().ok())
        .collect();
    assert_eq!(created.len(), 1, "{trail}");
    assert!(
        created[0] >= restarted_at,
        "VmCreated was recorded before the restart: {trail}"
    );
    assert_eq!(
        local_vms(dir.path()),
        before,
        "still exactly one VM for the attempt, the same one"
    );
    delete_local_vms(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_between_vm_request_and_creation() {
    killed_between_vm_request_and_creation(None, "kill_sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_between_vm_request_and_creation() {
    let db = TestDb::postgres().await;
    let deployment = db.options().notify_channel.clone();
    killed_between_vm_request_and_creation(Some(db.url.clone()), &deployment).await;
}

/// Two platforms on one PostgreSQL: one leads, the other stands by and takes
/// over when the leader is killed mid-work; no effect happens twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_leader() {
    let db = TestDb::postgres().await;
    let deployment = db.options().notify_channel.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &deployment);
    let config = config.to_string_lossy().to_string();
    let env = [
        ("SP_CONFIG", config.as_str()),
        ("SP_DATABASE_URL", db.url.as_str()),
    ];

    let mut leader = Running::start(dir.path(), &env);
    leader.wait_ready().await;
    let start = Instant::now();
    while !leader.managers_role().await.starts_with("leader") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the first instance never leads"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let standby = Running::start(dir.path(), &env);
    standby.wait_ready().await;
    // Ready may come before the managers have tried for the lease.
    let start = Instant::now();
    let role = loop {
        let role = standby.managers_role().await;
        if !role.is_empty() && role != "starting" {
            break role;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the second instance never settles on a role: {role:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(role, "standby");

    let first = standby.deliver_push("two-1", '3').await;
    let second = standby.deliver_push("two-2", '4').await;
    leader.wait_stage(&first, "provisioning_vm").await;
    leader.wait_stage(&second, "provisioning_vm").await;
    leader.kill();

    let killed_at = Instant::now();
    while !standby.managers_role().await.starts_with("leader") {
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "the standby never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the standby took over after {:?}", killed_at.elapsed());
    standby.wait_stage(&first, "booting").await;
    standby.wait_stage(&second, "booting").await;
    let third = standby.deliver_push("two-3", '5').await;
    standby.wait_stage(&third, "booting").await;

    let vms = local_vms(dir.path());
    assert_eq!(vms.len(), 3, "one VM per run attempt: {vms:?}");
    for run in [&first, &second, &third] {
        let events = db
            .store()
            .read_stream(&format!("run-{run}"), 1)
            .await
            .expect("read");
        let requested = events
            .iter()
            .filter(|e| e.event_type == "VmRequested")
            .count();
        let created = events
            .iter()
            .filter(|e| e.event_type == "VmCreated")
            .count();
        assert_eq!((requested, created), (1, 1), "run {run}");
    }
    delete_local_vms(dir.path()).await;
}

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for line in self.log.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                eprintln!("[{}] {line}", self.base);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_on_a_fresh_directory_creates_the_sqlite_file_and_gets_ready() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Running::start(dir.path(), &[]);
    assert_eq!(platform.get("/healthz").await, (200, "ok".to_string()));
    let body = platform.wait_ready().await;
    assert!(body.contains("\"ready\":true"), "{body}");
    assert!(
        dir.path().join("sample-platform.db").exists(),
        "the default database is a SQLite file in the working directory"
    );
}

#[tokio::test]
async fn serve_on_postgres_migrates_the_database_and_gets_ready() {
    let db = TestDb::postgres_unmigrated().await;
    assert!(
        !db.database
            .pending_migrations()
            .await
            .expect("check")
            .is_empty()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Running::start(dir.path(), &[("SP_DATABASE_URL", &db.url)]);
    platform.wait_ready().await;
    assert!(
        db.database
            .pending_migrations()
            .await
            .expect("check")
            .is_empty()
    );
    assert!(!dir.path().join("sample-platform.db").exists());
}

#[tokio::test]
async fn an_unreachable_database_is_alive_but_not_ready_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Running::start(
        dir.path(),
        &[("SP_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")],
    );
    assert_eq!(platform.get("/healthz").await.0, 200);
    let (status, body) = platform.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("postgres database"), "{body}");
}

#[tokio::test]
async fn migrate_applies_migrations_and_exits() {
    let db = TestDb::postgres_unmigrated().await;
    let output = Command::new(BINARY)
        .arg("migrate")
        .env_clear()
        .env("SP_DATABASE_URL", &db.url)
        .output()
        .expect("run migrate");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("password"));
    assert!(
        db.database
            .pending_migrations()
            .await
            .expect("check")
            .is_empty()
    );
}

/// Start `processes` copies of `sample-platform migrate` on one database at
/// once; every one must succeed and the database end fully migrated.
fn migrate_at_once(url: &str, processes: usize) {
    let children: Vec<Child> = (0..processes)
        .map(|_| {
            Command::new(BINARY)
                .arg("migrate")
                .env_clear()
                .env("SP_DATABASE_URL", url)
                .env("SP_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start migrate")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("migrate ends");
        assert!(
            output.status.success(),
            "a migration racing others failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn sqlite_processes_migrating_at_once_take_turns() {
    // Each round is a fresh file: the race is on the first migrations.
    for round in 0..6 {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("race-{round}.db")).display()
        );
        migrate_at_once(&url, 4);
        let db = sp_eventstore::Database::open(&url, &sp_eventstore::DbOptions::default())
            .await
            .expect("open");
        assert!(db.pending_migrations().await.expect("check").is_empty());
        db.close().await;
    }
}

#[tokio::test]
async fn postgres_processes_migrating_at_once_take_turns() {
    let db = TestDb::postgres_unmigrated().await;
    migrate_at_once(&db.url, 4);
    assert!(
        db.database
            .pending_migrations()
            .await
            .expect("check")
            .is_empty()
    );
}

#[test]
fn help_documents_every_setting_and_its_variable() {
    let output = Command::new(BINARY)
        .args(["serve", "--help"])
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--database-url",
        "SP_DATABASE_URL",
        "--listen",
        "SP_LISTEN",
        "--config",
        "SP_CONFIG",
    ] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

#[test]
fn a_bad_setting_fails_at_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("sp.toml"), "listen = \"not an address\"\n").expect("write");
    let output = Command::new(BINARY)
        .args(["serve", "--config", "sp.toml"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen"), "{stderr}");
}

/// `sample-platform ARGS` in `dir` with only these variables: its exit
/// code, standard output and standard error.
fn command_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_catalogue_file_that_does_not_load_stops_the_platform_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("broken.toml"),
        "[[tests]]\nid = \"t\"\nsample = \n",
    )
    .expect("write");
    for (file, says) in [
        ("missing.toml", "missing.toml"),
        ("broken.toml", "broken.toml"),
    ] {
        let (code, _, stderr) = command_in(
            dir.path(),
            &["serve"],
            &[("SP_LISTEN", "127.0.0.1:0"), ("SP_CATALOGUE", file)],
        );
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("the catalogue file") && stderr.contains(says),
            "{stderr}"
        );
        assert!(!stderr.contains("the platform is ready"), "{stderr}");
    }
    // A file that loads but that the catalogue refuses (a test of a sample
    // it does not have) stops it too, once the database is there.
    std::fs::write(
        dir.path().join("refused.toml"),
        "[[tests]]\nid = \"t\"\nsample = \"nowhere.ts\"\ncommand = \"{exe} {sample}\"\n",
    )
    .expect("write");
    let (code, _, stderr) = command_in(
        dir.path(),
        &["serve"],
        &[
            ("SP_LISTEN", "127.0.0.1:0"),
            ("SP_CATALOGUE", "refused.toml"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("was not imported") && stderr.contains("nowhere.ts"),
        "{stderr}"
    );
    assert!(!stderr.contains("the platform is ready"), "{stderr}");
}

#[test]
fn commands_on_a_database_say_where_there_is_none_and_make_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["tokens", "create", "alice", "--scope", "read"][..],
        &["tokens", "list"],
        &["audit", "verify"],
        &["audit", "show", "some-run"],
        &["projections", "rebuild"],
    ] {
        let (code, stdout, stderr) = command_in(dir.path(), args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?} printed no token: {stdout}");
        assert!(
            stderr.contains("there is no SQLite database at") && stderr.contains("--database-url"),
            "{args:?}: {stderr}"
        );
        assert!(!dir.path().join("sample-platform.db").exists(), "{args:?}");
    }
    let (code, _, stderr) = command_in(
        dir.path(),
        &["--database-url", "sqlite://gone/x.db", "migrate"],
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the directory")
            && stderr.contains("gone")
            && stderr.contains("does not exist"),
        "{stderr}"
    );
    let (_, _, stderr) = command_in(
        dir.path(),
        &["--database-url", "mysql://u@h/db", "migrate"],
        &[],
    );
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
    assert!(!stderr.contains("invalid append"), "{stderr}");
    let (code, _, stderr) = command_in(
        dir.path(),
        &[
            "--database-url",
            "postgres://postgres@127.0.0.1:1/x",
            "tokens",
            "list",
        ],
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot connect to PostgreSQL at 127.0.0.1:1")
            && stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn a_misspelt_setting_is_named_once_with_the_nearest_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("sp.toml"),
        "[policy.deadlines]\nheartbeet = 30\n",
    )
    .expect("write");
    let (code, _, stderr) = command_in(dir.path(), &["--config", "sp.toml", "migrate"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        "sample-platform: invalid configuration: unknown setting \"policy.deadlines.heartbeet\": \
         did you mean \"policy.deadlines.heartbeat\"? (in sp.toml)"
    );
    std::fs::write(dir.path().join("sp.toml"), "listen = \n").expect("write");
    let (_, _, stderr) = command_in(dir.path(), &["--config", "sp.toml", "migrate"], &[]);
    assert_eq!(stderr.matches("TOML parse error").count(), 1, "{stderr}");
}

#[test]
fn config_show_lists_every_setting_with_its_source_and_masks_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("sp.toml"),
        "vm_capacity = 5\n[policy.deadlines]\nheartbeat = 60\n",
    )
    .expect("write");
    let (code, shown, stderr) = command_in(
        dir.path(),
        &[
            "--config",
            "sp.toml",
            "config",
            "show",
            "--database-url",
            "postgres://u:hunter2@db/x",
        ],
        &[
            ("SP_GITHUB_TOKEN", "ghp_hunter2"),
            ("SP_LISTEN", "0.0.0.0:9"),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no {key} in:\n{shown}"))
    };
    assert_eq!(line("vm_capacity"), "vm_capacity = 5 # file sp.toml");
    assert_eq!(
        line("policy.deadlines.heartbeat"),
        "policy.deadlines.heartbeat = 60 # file sp.toml"
    );
    assert_eq!(
        line("database_url"),
        "database_url = \"postgres://u:***@db/x\" # flag --database-url"
    );
    assert_eq!(
        line("github_token"),
        "github_token = \"***\" # environment SP_GITHUB_TOKEN"
    );
    assert_eq!(
        line("listen"),
        "listen = \"0.0.0.0:9\" # environment SP_LISTEN"
    );
    assert_eq!(line("vm_provider"), "vm_provider = \"local\" # default");
    // TOML-only settings are there too, and unset ones say so.
    assert!(line("retention.every_secs").ends_with("# default"));
    assert_eq!(
        line("github_webhook_secret"),
        "github_webhook_secret = (not set) # default"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!dir.path().join("sample-platform.db").exists());
}

#[test]
fn the_help_says_what_each_argument_and_the_demo_are() {
    let (_, help, _) = command_in(Path::new("."), &["runs", "enqueue", "--help"], &[]);
    for says in [
        "owner/name",
        "full SHA",
        "--wait",
        "exit 0 when every run passed",
    ] {
        assert!(help.contains(says), "{says}: {help}");
    }
    let (_, help, _) = command_in(Path::new("."), &["demo", "--help"], &[]);
    assert!(help.contains("Nothing is imported or queued"), "{help}");
}

#[test]
fn audit_export_and_import_on_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        Command::new(BINARY)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .output()
            .expect("run")
    };
    let backwards = run(&["audit", "export", "--from", "5", "--to", "2"]);
    assert!(!backwards.status.success());
    let stderr = String::from_utf8_lossy(&backwards.stderr);
    assert!(stderr.contains("--from 5 is after --to 2"), "{stderr}");
    assert!(
        !dir.path().join("sample-platform.db").exists(),
        "refused before opening the database"
    );

    // Where there is no database, none is made to export from.
    let nowhere = run(&["audit", "export", "--output", "log.jsonl"]);
    assert!(!nowhere.status.success());
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        stderr.contains("there is no SQLite database at")
            && stderr.contains("sample-platform.db")
            && stderr.contains("--database-url"),
        "{stderr}"
    );
    assert!(!dir.path().join("sample-platform.db").exists());

    // A fresh database's log holds no event yet.
    assert!(run(&["migrate"]).status.success());
    let empty = run(&["audit", "export", "--output", "log.jsonl"]);
    assert!(empty.status.success(), "{empty:?}");
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(stderr.contains("0 events exported"), "{stderr}");
    let written = std::fs::read_to_string(dir.path().join("log.jsonl")).expect("the file");
    assert_eq!(written, "");

    // An export goes into a new database, and only into an empty one.
    let other = tempfile::tempdir().expect("temp dir");
    let line = r#"{"position":3,"stream":"notices","version":1,"id":"0190c3a4-0000-7000-8000-000000000001","type":"NoticeRecorded","schema_version":1,"data":{"kind":"k","message":"m"},"metadata":{"actor":"a","correlation_id":"0190c3a4-0000-7000-8000-000000000002"},"recorded_at":"2026-12-07T10:00:00Z"}"#;
    std::fs::write(other.path().join("in.jsonl"), format!("{line}\n")).expect("write");
    let import = || {
        Command::new(BINARY)
            .args(["audit", "import", "in.jsonl"])
            .current_dir(other.path())
            .env_clear()
            .output()
            .expect("run")
    };
    let first = import();
    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("1 events imported"), "{stdout}");
    let second = import();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("position 3"),
        "{stderr}"
    );

    // The import gave the event its link; the chain holds in the database
    // and in an export of it, and an export edited after the fact is named.
    let audit = |dir: &Path, args: &[&str]| {
        Command::new(BINARY)
            .arg("audit")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .output()
            .expect("run")
    };
    let verified = audit(other.path(), &["verify"]);
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        stdout.contains("1 events in 1 streams") && stdout.contains("every chain holds"),
        "{stdout}"
    );
    let exported = audit(other.path(), &["export", "-o", "out.jsonl"]);
    assert!(exported.status.success(), "{exported:?}");
    let export = std::fs::read_to_string(other.path().join("out.jsonl")).expect("the export");
    assert!(export.contains(r#""hash":""#), "{export}");
    let offline = audit(other.path(), &["verify", "out.jsonl"]);
    assert!(offline.status.success(), "{offline:?}");

    let edited = export.replace(r#""message":"m""#, r#""message":"nothing to see""#);
    assert_ne!(edited, export);
    std::fs::write(other.path().join("edited.jsonl"), edited).expect("write");
    let caught = audit(other.path(), &["verify", "edited.jsonl"]);
    assert!(!caught.status.success());
    let stdout = String::from_utf8_lossy(&caught.stdout);
    let stderr = String::from_utf8_lossy(&caught.stderr);
    assert!(
        stdout.contains("broken: stream notices version 1 (position 3)")
            && stderr.contains("1 of 1 streams have a broken chain"),
        "{stdout}{stderr}"
    );
    let third = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        other.path().join("edited.jsonl"),
        third.path().join("edited.jsonl"),
    )
    .expect("copy");
    let refused = audit(third.path(), &["import", "edited.jsonl"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the export was altered"), "{stderr}");
}

/// The command line, as the README's walkthrough runs it next to the demo.
fn cli(dir: &Path, base: &str, token: &str, args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("SP_URL", base)
        .env("SP_TOKEN", token)
        .output()
        .expect("run the command line");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A run's status, once it is `status`.
async fn run_once(base: &str, run: &str, status: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let response: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .json(&serde_json::json!({
                "query": "query($id: ID!) { run(id: $id) { status verdict passed failed } }",
                "variables": { "id": run }
            }))
            .send()
            .await
            .expect("graphql")
            .json()
            .await
            .expect("json");
        if response["data"]["run"]["status"] == status {
            return response["data"]["run"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run {run} did not reach {status}: {response}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The README's walkthrough on the demo: samples and tests added from the
/// command line, a run queued, its failing output accepted, and the run
/// again passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_walkthrough_goes_from_a_failing_output_to_a_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(BINARY);
    command
        .arg("demo")
        .current_dir(dir.path())
        .env_clear()
        .env("SP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start the demo");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo starts");
    let platform = Running {
        child,
        base: format!("http://{address}"),
        log: std::sync::Arc::default(),
    };
    // The command line opens the same database: after the platform migrated it.
    platform.wait_ready().await;
    let base = platform.base.clone();
    let token = cli(
        dir.path(),
        &base,
        "",
        &[
            "tokens",
            "create",
            "demo",
            "--scope",
            "operate",
            "--scope",
            "catalogue",
        ],
    )
    .trim()
    .to_string();
    // Two samples added by hand; the import uploads the third, and says so.
    let samples: Vec<String> = ["hello", "fox"]
        .iter()
        .map(|s| format!("demo/samples/{s}.txt"))
        .collect();
    let mut add = vec!["samples", "add", "--tag", "demo"];
    add.extend(samples.iter().map(String::as_str));
    let added = cli(dir.path(), &base, &token, &add);
    assert_eq!(added.matches("added ").count(), 2, "{added}");
    let again = cli(dir.path(), &base, &token, &add[..5]);
    assert!(again.contains("already in the catalogue"), "{again}");
    let imported = cli(
        dir.path(),
        &base,
        &token,
        &["catalogue", "import", "demo/catalogue.toml"],
    );
    assert!(
        imported.contains("1 samples added (2 were there already), 3 tests defined"),
        "{imported}"
    );
    // A later file may name a sample the catalogue has by its name alone.
    std::fs::write(
        dir.path().join("more.toml"),
        "[[tests]]\nid = \"hello-again\"\nsample = \"hello.txt\"\ncommand = \"{exe} {sample} {outdir}\"\nactive = false\n",
    )
    .expect("write");
    let more = cli(
        dir.path(),
        &base,
        &token,
        &["catalogue", "import", "more.toml"],
    );
    assert!(more.contains("1 tests defined"), "{more}");

    // `--wait` follows the run to its verdict: the demo's first run fails
    // one test, and says so in its exit code.
    let env = [("SP_URL", base.as_str()), ("SP_TOKEN", token.as_str())];
    let (code, said, stderr) = command_in(
        dir.path(),
        &[
            "runs",
            "enqueue",
            "--wait",
            "demo/upcase",
            "de30de30de30de30de30de30de30de30de30de30",
        ],
        &env,
    );
    assert_eq!(code, Some(1), "{said}{stderr}");
    assert!(said.contains("failed: 1 test failed, 2 passed"), "{said}");
    let run = said
        .lines()
        .find_map(|l| l.strip_prefix("queued run "))
        .map(|r| r.trim().to_string())
        .expect("a run id");
    assert!(said.contains(&format!("{base}/runs/{run}")), "{said}");

    let first = run_once(&base, &run, "COMPLETED").await;
    assert_eq!(
        (&first["verdict"], &first["passed"], &first["failed"]),
        (
            &serde_json::json!("fail"),
            &serde_json::json!(2),
            &serde_json::json!(1)
        ),
        "{first}"
    );
    let graphql = |query: &'static str, variables: serde_json::Value| {
        let (base, token) = (base.clone(), token.clone());
        async move {
            let r: serde_json::Value = reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("graphql")
                .json()
                .await
                .expect("json");
            assert!(r["errors"].is_null(), "{r}");
            r["data"].clone()
        }
    };
    let diff = graphql(
        "query($run: ID!) { outputDiff(runId: $run, testId: \"upper-fox\", output: \"upper.txt\") { lines { kind text } note } }",
        serde_json::json!({ "run": run }),
    )
    .await;
    let lines = diff["outputDiff"]["lines"].to_string();
    assert!(
        lines.contains("THE QUICK BROWN F0X") && lines.contains("THE QUICK BROWN FOX"),
        "the diff shows the old baseline and today's output: {diff}"
    );
    graphql(
        "mutation($run: ID!) { acceptOutput(runId: $run, testId: \"upper-fox\", output: \"upper.txt\", asBaseline: false, reason: \"the F0X typo is fixed\") }",
        serde_json::json!({ "run": run }),
    )
    .await;
    let again = graphql(
        "mutation($run: ID!) { retryRun(id: $run, currentCatalogue: true) }",
        serde_json::json!({ "run": run }),
    )
    .await;
    let rerun = again["retryRun"].as_str().expect("a new run").to_string();
    let second = run_once(&base, &rerun, "COMPLETED").await;
    assert_eq!(second["verdict"], "pass", "{second}");
    assert_eq!(second["passed"], 3, "{second}");
    // The first run keeps its verdict.
    assert_eq!(run_once(&base, &run, "COMPLETED").await["verdict"], "fail");

    // An auditor reads the first run from the log, now and as it was when
    // it was queued.
    let now = cli(dir.path(), &base, &token, &["audit", "show", &run]);
    assert!(
        now.contains("status    completed") && now.contains("verdict   fail: 2 passed, 1 failed"),
        "{now}"
    );
    let queued_at: i64 = now
        .lines()
        .find(|l| l.contains(" Queued "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a Queued line with its position: {now}"));
    let then = cli(
        dir.path(),
        &base,
        &token,
        &["audit", "show", &run, "--at", &queued_at.to_string()],
    );
    assert!(
        then.contains(&format!("as of position {queued_at}"))
            && then.contains("status    queued")
            && then.contains("later")
            && !then.contains("verdict"),
        "{then}"
    );
    let wrong = Command::new(BINARY)
        .args(["audit", "show", "not-a-run"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("run");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("is not a run id"),
        "{wrong:?}"
    );

    // Each run had one VM and one runner: no create retried into a second
    // runner whose reports the finished run then refused.
    for id in [&run, &rerun] {
        let mut types: Vec<String> = Vec::new();
        for _ in 0..100 {
            let trail = graphql(
                "query($run: ID!) { auditTrail(runId: $run) { type } }",
                serde_json::json!({ "run": id }),
            )
            .await;
            types = trail["auditTrail"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["type"].as_str().map(String::from))
                .collect();
            if types.iter().any(|t| t == "VmDeleted") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            types.iter().any(|t| t == "VmDeleted"),
            "the trail is complete: {types:?}"
        );
        assert_eq!(
            types.iter().filter(|t| *t == "VmCreated").count(),
            1,
            "{types:?}"
        );
        assert!(!types.iter().any(|t| t == "ReportRefused"), "{types:?}");
    }
}

/// The old platform's catalogue, from its MySQL dump and again from its CSV
/// exports: imported with what cannot be mapped listed, the second import
/// changing nothing, and a run of the imported catalogue passing on a
/// stand-in for CCExtractor that speaks the command line the import wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_platforms_catalogue_is_imported_once_and_runs() {
    let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/legacy");
    let legacy = legacy.canonicalize().expect("the legacy fixture");
    let dir = tempfile::tempdir().expect("temp dir");
    let source = format!("file://{}", legacy.join("ccx.pl").display());
    let platform = Running::start(dir.path(), &[("SP_ARTIFACT_SOURCE", &source)]);
    platform.wait_ready().await;
    let base = platform.base.clone();
    let token = cli(
        dir.path(),
        &base,
        "",
        &[
            "tokens",
            "create",
            "importer",
            "--scope",
            "catalogue",
            "--scope",
            "operate",
        ],
    )
    .trim()
    .to_string();
    let path = |p: &str| legacy.join(p).display().to_string();
    let (dump, csv, samples, results) = (
        path("dump.sql"),
        path("csv"),
        path("samples"),
        path("results"),
    );

    let first = cli(
        dir.path(),
        &base,
        &token,
        &[
            "catalogue",
            "import-legacy",
            "--dump",
            &dump,
            "--samples",
            &samples,
            "--results",
            &results,
        ],
    );
    let not_imported: Vec<&str> = first
        .lines()
        .filter(|l| l.starts_with("not imported: "))
        .collect();
    assert_eq!(not_imported.len(), 5, "{first}");
    for says in [
        "not imported: sample 11: its file ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff.ts",
        "not imported: regression test 29: output_type \"xml\" is none of",
        "not imported: regression test 30: its sample 11 was not imported",
        "not imported: regression test 31: output",
        "not imported: regression test 32: UDP input and TCP output would both need {port}",
    ] {
        assert!(first.contains(says), "{says}:\n{first}");
    }
    assert!(
        first.contains("10 samples added (0 were there already), 28 tests defined or changed"),
        "{first}"
    );
    let catalogue_events = || async {
        let log: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .json(&serde_json::json!({
                "query": "{ auditLog(first: 100, filter: { stream: \"catalogue\" }) { edges { node { summary metadata { actor } } } } }"
            }))
            .send()
            .await
            .expect("graphql")
            .json()
            .await
            .expect("json");
        log["data"]["auditLog"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let started = Instant::now();
    let mut recorded = catalogue_events().await;
    while recorded.len() < 38 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        recorded = catalogue_events().await;
    }
    assert_eq!(recorded.len(), 38, "10 samples and 28 tests");
    assert!(
        recorded
            .iter()
            .all(|e| e["node"]["metadata"]["actor"] == "user:importer"),
        "the importing user is the actor"
    );

    // The same tables as CSV files: nothing new.
    let again = cli(
        dir.path(),
        &base,
        &token,
        &[
            "catalogue",
            "import-legacy",
            "--dump",
            &csv,
            "--samples",
            &samples,
            "--results",
            &results,
        ],
    );
    assert!(
        again.contains("0 samples added (10 were there already), 0 tests defined or changed"),
        "{again}"
    );

    // The imported catalogue runs: 27 active tests of every kind, each
    // passing on the stand-in.
    let commit = "c".repeat(40);
    let env = [("SP_URL", base.as_str()), ("SP_TOKEN", token.as_str())];
    let (code, said, stderr) = command_in(
        dir.path(),
        &[
            "runs",
            "enqueue",
            "--wait",
            "CCExtractor/ccextractor",
            &commit,
        ],
        &env,
    );
    assert_eq!(code, Some(0), "{said}{stderr}");
    assert!(said.contains("passed: 27 tests passed"), "{said}");
    // The audit model applies the log in order: the run it shows finished
    // was recorded after the second import, which recorded nothing.
    assert_eq!(catalogue_events().await.len(), 38, "no new event");
}
