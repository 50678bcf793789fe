//! What one run of N regression tests costs the platform: a run of a
//! generated catalogue of N trivial tests is started (managers on, a local
//! VM that only sleeps), then its runner's reports are sent over HTTP one by
//! one, as a runner does: progress, N results, the finish. Prints the wall
//! time and this process's CPU time (the platform runs in it; the client's
//! share is small) per report, on both backends.
//!
//! `cargo bench -p sp-tests --bench run_reports` (`SP_BENCH_TESTS`, a
//! comma-separated list of N, default `100,300,1000`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sp_tests::{Backend, TestPlatform, demo_dir};

/// This process's user + system CPU time so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) in ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are the 14th and 15th fields of stat: 12th and 13th here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A catalogue of `n` tests of the demo's hello sample, each with one output.
fn catalogue(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let sample = demo_dir().join("samples/hello.txt");
    let mut toml = format!(
        "[[samples]]\nname = \"hello.txt\"\nsha256 = \"a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\"\npath = \"{}\"\n",
        sample.display()
    );
    for i in 0..n {
        let _ = write!(
            toml,
            "\n[[tests]]\nid = \"t{i:05}\"\nsample = \"hello.txt\"\ncommand = \"{{exe}} {{sample}} {{outdir}}\"\ncategories = [\"bench\"]\n[[tests.outputs]]\nname = \"out.txt\"\napproved_sha256 = \"{:064x}\"\n",
            i + 1
        );
    }
    let path = dir.join("catalogue.toml");
    std::fs::write(&path, toml).expect("write the catalogue");
    path
}

async fn report(p: &TestPlatform, run: &str, token: &str, body: Value) {
    let (status, answer) = p.report(run, token, &body).await;
    assert!(
        (200..300).contains(&status),
        "report refused: {status} {answer}"
    );
}

async fn bench(backend: Backend, name: &str, n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = catalogue(dir.path(), n);
    let p = TestPlatform::start_with(backend, move |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(file);
        s.local_vm_command = "sleep 600".into();
        s.log = "error".into();
        s
    })
    .await;
    let (run, token) = p.started_run("bench-1", '2').await;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    report(
        &p,
        &run,
        &token,
        json!({ "client_id": uuid::Uuid::now_v7(), "kind": "progress", "stage": "testing", "done": 0, "total": n }),
    )
    .await;
    for i in 0..n {
        report(
            &p,
            &run,
            &token,
            json!({ "client_id": uuid::Uuid::now_v7(), "kind": "result", "result": {
                "test_id": format!("t{i:05}"), "exit_code": 0, "runtime_ms": 1,
                "outputs": [{ "name": "out.txt", "produced": { "kind": "equal" } }] } }),
        )
        .await;
    }
    report(
        &p,
        &run,
        &token,
        json!({ "client_id": uuid::Uuid::now_v7(), "kind": "finish" }),
    )
    .await;
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    p.until(&run, "Completed").await;
    let reports = (n + 2) as f64;
    println!(
        "{name:<8} {n:>6} {:>9.2}s {:>9.2}s {:>10.3}ms {:>10.3}ms",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / reports,
        cpu.as_secs_f64() * 1000.0 / reports,
    );
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("SP_BENCH_TESTS")
        .unwrap_or_else(|_| "100,300,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    println!(
        "{:<8} {:>6} {:>10} {:>10} {:>12} {:>12}",
        "backend", "tests", "wall", "cpu", "wall/report", "cpu/report"
    );
    for &n in &sizes {
        bench(Backend::Sqlite, "sqlite", n).await;
        bench(Backend::Postgres, "postgres", n).await;
    }
}
