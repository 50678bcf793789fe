//! The real `sample-platform` binary, started as a user would, over real HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sp_eventstore::testing::TestDb;

const BINARY: &str = env!("CARGO_BIN_EXE_sample-platform");

/// A running `sample-platform serve`, killed when dropped.
struct Running {
    child: Child,
    base: String,
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
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
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

impl Drop for Running {
    fn drop(&mut self) {
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
