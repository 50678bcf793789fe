//! The goals of "Linear at scale", each printed beside its physical limit
//! measured in the same run, on both backends. The platform runs in this
//! process (loopback HTTP, real databases), so CPU time is the platform's
//! plus a small client share.
//!
//! - **reports**: one run of N trivial tests, its runner's reports sent over
//!   HTTP one by one: CPU per report, event rows read per event written (the
//!   store's own counters) and this process's peak RSS; beside a plain
//!   single-row commit's cost on the same database.
//! - **rebuild**: every read model rebuilt from a log of ~150k events (the
//!   N=1,000 run copied); beside reading the whole log alone.
//! - **intake**: signed pull-request deliveries at 16 and 64 clients; beside
//!   plain single-row commits at the same concurrency.
//! - **queue** and **runs(pullRequest:)**: GraphQL p50/p99 with the intake's
//!   runs waiting (50k by default); beside the GraphQL round trip itself.
//! - **wake-up**: push 202 → VmRequested, p50/p99 over 50 pushes.
//!
//! `cargo bench -p sp-tests --bench goals`. `SP_BENCH_TESTS` (run sizes,
//! default `100,1000,10000`; the rebuild is measured with N=1,000),
//! `SP_BENCH_DELIVERIES` (per concurrency level, default 25000),
//! `SP_BENCH_BACKENDS` (default `postgres,sqlite`), `SP_BENCH_ONLY` (default
//! `reports,wake-up,intake`; the queries are measured after the intake).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sp_domain::RunId;
use sp_eventstore::{ExpectedVersion, NewEvent, Pool, Tx, on_tx};
use sp_tests::{Backend, TestPlatform, generated_catalogue, github};

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

/// This process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Plain single-row commits by `clients` concurrent writers: commits/s.
async fn plain_commits(pool: &Pool, clients: usize, per_client: usize) -> f64 {
    let mut tx = Tx::begin(pool).await.expect("begin");
    on_tx!(&mut tx, c => sqlx::query("CREATE TABLE IF NOT EXISTS bench_commits (n BIGINT NOT NULL)")
        .execute(c)
        .await
        .expect("create")
        .rows_affected());
    tx.commit().await.expect("commit");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let mut tx = Tx::begin(&pool).await.expect("begin");
                let n = (client * per_client + i) as i64;
                on_tx!(&mut tx, c => sqlx::query("INSERT INTO bench_commits (n) VALUES ($1)")
                    .bind(n)
                    .execute(c)
                    .await
                    .expect("insert")
                    .rows_affected());
                tx.commit().await.expect("commit");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    (clients * per_client) as f64 / started.elapsed().as_secs_f64()
}

async fn report(p: &TestPlatform, run: &str, token: &str, body: Value) {
    let (status, answer) = p.report(run, token, &body).await;
    assert!(
        (200..300).contains(&status),
        "report refused: {status} {answer}"
    );
}

/// One run of `n` tests reported over HTTP; at N=1,000, the rebuild's
/// measurement on a log made of copies of it.
async fn reports(backend: Backend, name: &str, n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = generated_catalogue(dir.path(), n);
    let mut p = TestPlatform::start_with(backend, move |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(file);
        s.local_vm_command = "sleep 600".into();
        s.log = "error".into();
        s
    })
    .await;
    let commit_ms = 1000.0 / plain_commits(&p.db.database.pool, 1, 500).await;
    let (run, token) = p.started_run("bench-1", '2').await;
    p.caught_up().await;
    let before = p.store_counts().await;
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
                "outputs": [{ "name": "upper.txt", "produced": { "kind": "equal" } }] } }),
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
    p.until(&run, "Completed").await;
    p.caught_up().await;
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let after = p.store_counts().await;
    let reports = (n + 2) as f64;
    let (read, written) = (
        after.rows_read - before.rows_read,
        after.events_written - before.events_written,
    );
    println!(
        "{name:<8} reports    N={n:<6} CPU {:>7.3} ms/report (goal <= 1), {:>6.2} s in all, wall {:>6.2} s | rows read {read} for {written} events written = {:.2}x (goal <= 2) | peak RSS {:.0} MiB | limit: one plain commit {commit_ms:.3} ms",
        cpu.as_secs_f64() * 1000.0 / reports,
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        read as f64 / written.max(1) as f64,
        peak_rss_mib(),
    );
    if n != 1000 {
        return;
    }
    // The rebuild's log: this run copied under new ids to ~150k events.
    p.stop_serving().await;
    let store = p.db.store();
    let events = store
        .read_stream(&format!("run-{run}"), 1)
        .await
        .expect("read");
    let copies = 150_000 / events.len().max(1);
    for _ in 0..copies {
        let id = RunId(uuid::Uuid::new_v4());
        let copy: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                data: serde_json::from_str(&e.data.to_string().replace(&run, &id.to_string()))
                    .expect("json"),
                metadata: e.metadata.clone(),
            })
            .collect();
        store
            .append(&id.stream(), ExpectedVersion::NoStream, &copy)
            .await
            .expect("append a copy");
    }
    let started = Instant::now();
    let mut read = 0u64;
    let mut cursor = sp_eventstore::LogPosition::START;
    loop {
        let batch = store.read_all(cursor, 5000).await.expect("read");
        let Some(last) = batch.events.last() else {
            break;
        };
        cursor = last.cursor();
        read += batch.events.len() as u64;
    }
    let read_rate = read as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let applied = sp_projections::rebuild(&sp_projections::standard(), &p.db.database, |_, _| {})
        .await
        .expect("rebuild");
    let rate = applied as f64 / started.elapsed().as_secs_f64();
    println!(
        "{name:<8} rebuild    all {} models from {applied} events: {rate:>9.0} events/s (goal >= 100,000) | limit: reading the log alone {read_rate:.0} events/s",
        sp_projections::standard().len()
    );
}

/// A distinct pull request per delivery: each queues one run.
fn delivery(n: u64) -> (String, Value) {
    let sha = format!("{:040x}", 0xbe00_0000_u64 + n);
    let payload =
        github::pull_request("opened", 100_000 + n, &sha, "2026-11-30T10:00:00Z", "bench");
    (format!("bench-{n}-{}", uuid::Uuid::new_v4()), payload)
}

async fn deliveries_at(p: &TestPlatform, clients: usize, total: u64, offset: u64) -> f64 {
    let per_client = total / clients as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..clients as u64 {
        let client = p.http.clone();
        let base = p.base.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let (id, payload) = delivery(offset + t * per_client + i);
                let body = payload.to_string();
                let signature =
                    sp_api::github::signature::sign(sp_tests::SECRET.as_bytes(), body.as_bytes());
                let response = client
                    .post(format!("{base}/webhooks/github"))
                    .header("X-GitHub-Event", "pull_request")
                    .header("X-GitHub-Delivery", id)
                    .header("X-Hub-Signature-256", signature)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("deliver");
                assert_eq!(response.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    (per_client * clients as u64) as f64 / start.elapsed().as_secs_f64()
}

/// p50 and p99 of a GraphQL query asked `times` times in a row.
async fn latencies(p: &TestPlatform, query: &str, times: usize) -> (f64, f64) {
    let mut took = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        let r = p.graphql(query, json!({}), None).await;
        took.push(started.elapsed());
        assert!(r.get("errors").is_none(), "{r}");
    }
    took.sort();
    (ms(percentile(&took, 0.5)), ms(percentile(&took, 0.99)))
}

async fn intake_and_queries(backend: Backend, name: &str, per_level: u64) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s.log = "error".into();
        s
    })
    .await;
    let mut offset = 0;
    for clients in [16, 64] {
        let rate = deliveries_at(&p, clients, per_level, offset).await;
        offset += per_level;
        // The limit on a platform at rest, not one whose read models still
        // apply the deliveries on the same cores.
        p.caught_up().await;
        let commits = plain_commits(&p.db.database.pool, clients, 200).await;
        println!(
            "{name:<8} intake     {clients} clients: {rate:>7.0} deliveries/s = {:>4.1}% of plain commits (goal >= 50%) | limit: {commits:.0} plain single-row commits/s",
            100.0 * rate / commits
        );
    }
    p.caught_up().await;
    let (f50, f99) = latencies(&p, "{ __typename }", 300).await;
    let (q50, q99) = latencies(
        &p,
        "{ queue(platform: \"linux\") { waitingCount oldestWaitingSince running { runId } waiting(first: 20) { nodes { runId position } pageInfo { endCursor } } } }",
        300,
    )
    .await;
    let waiting = p
        .query("{ queue(platform: \"linux\") { waitingCount } }", json!({}))
        .await["queue"][0]["waitingCount"]
        .clone();
    println!(
        "{name:<8} queue      {waiting} waiting, first page of 20: p50 {q50:.2} ms, p99 {q99:.2} ms (goal p99 < 20) | limit: a GraphQL round trip p50 {f50:.2} ms, p99 {f99:.2} ms"
    );
    let (r50, r99) = latencies(
        &p,
        "{ runs(first: 20, filter: { pullRequest: 100777 }) { edges { node { id status } } } }",
        300,
    )
    .await;
    println!(
        "{name:<8} runs(PR)   without a repository: p50 {r50:.2} ms, p99 {r99:.2} ms (goal p99 < 10) | limit: a GraphQL round trip p99 {f99:.2} ms"
    );
    p.stop().await;
}

async fn wake_up(backend: Backend, name: &str, pushes: usize) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.vm_capacity = pushes + 10;
        s.local_vm_command = "sleep 600".into();
        s.log = "error".into();
        s
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..pushes {
        let after = format!("{:040x}", 0xab00_0000_u64 + n as u64);
        let (status, body) = p
            .deliver(
                "push",
                &format!("wake-{n}"),
                &github::push("master", &github::sha('1'), &after, "bench"),
            )
            .await;
        assert_eq!(status, 202);
        ids.push(body["runs"][0].as_str().unwrap_or_default().to_string());
        // One at a time, as pushes arrive: latency, not load.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut waits = Vec::new();
    for id in &ids {
        p.until(id, "VmRequested").await;
        let stream =
            p.db.store()
                .read_stream(&format!("run-{id}"), 1)
                .await
                .expect("read");
        let at = |kind: &str| {
            stream
                .iter()
                .find(|e| e.event_type == kind)
                .map(|e| e.recorded_at)
        };
        if let (Some(queued), Some(requested)) = (at("Queued"), at("VmRequested")) {
            waits.push(Duration::from_micros(
                (requested - queued).num_microseconds().unwrap_or(0).max(0) as u64,
            ));
        }
    }
    waits.sort();
    println!(
        "{name:<8} wake-up    push 202 -> VmRequested over {} pushes: p50 {:.1} ms, p99 {:.1} ms (goal p99 < 100)",
        waits.len(),
        ms(percentile(&waits, 0.5)),
        ms(percentile(&waits, 0.99))
    );
    p.stop().await;
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = env_list("SP_BENCH_TESTS", "100,1000,10000")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let per_level: u64 = std::env::var("SP_BENCH_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let only = env_list("SP_BENCH_ONLY", "reports,wake-up,intake");
    for backend in env_list("SP_BENCH_BACKENDS", "postgres,sqlite") {
        let (b, name) = match backend.as_str() {
            "postgres" => (Backend::Postgres, "postgres"),
            "sqlite" => (Backend::Sqlite, "sqlite"),
            other => panic!("SP_BENCH_BACKENDS: {other:?} is neither postgres nor sqlite"),
        };
        if only.iter().any(|o| o == "reports") {
            for &n in &sizes {
                if std::env::var_os("SP_BENCH_CHILD").is_some() {
                    reports(b, name, n).await;
                } else {
                    // A process per run: a peak RSS is then that run's own
                    // (the allocator keeps what an earlier run freed).
                    let status = std::process::Command::new(
                        std::env::current_exe().expect("this bench's path"),
                    )
                    .env("SP_BENCH_CHILD", "1")
                    .env("SP_BENCH_BACKENDS", name)
                    .env("SP_BENCH_TESTS", n.to_string())
                    .env("SP_BENCH_ONLY", "reports")
                    .status()
                    .expect("run the bench for one size");
                    assert!(status.success(), "the run of {n} tests on {name} failed");
                }
            }
        }
        if only.iter().any(|o| o == "wake-up") {
            wake_up(b, name, 50).await;
        }
        if only.iter().any(|o| o == "intake") {
            intake_and_queries(b, name, per_level).await;
        }
    }
}
