//! How fast a queued run gets its VM: webhook deliveries on the platform with
//! its process managers and the local provider, on both backends. Prints, from
//! the events' recorded times, the p50/p99 of `Queued` → `VmRequested` and of
//! `Queued` → `VmCreated`.
//!
//! `cargo bench -p sp-tests --bench scheduling` (`SP_BENCH_RUNS`, default 200).

use std::time::Duration;

use sp_tests::github;
use sp_tests::{Backend, TestPlatform};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn bench(backend: Backend, name: &str, runs: usize) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.vm_capacity = runs + 10;
        s.local_vm_command = "sleep 600".into();
        s.log = "error".into();
        s
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..runs {
        let after = format!("{:040x}", 0xab00_0000_u64 + n as u64);
        let (status, body) = p
            .deliver(
                "push",
                &format!("sched-{n}"),
                &github::push("master", &github::sha('1'), &after, "bench"),
            )
            .await;
        assert_eq!(status, 202);
        ids.push(body["runs"][0].as_str().unwrap_or_default().to_string());
        // One delivery at a time, as pushes arrive: this measures latency, not load.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut to_requested = Vec::new();
    let mut to_created = Vec::new();
    for id in &ids {
        let stream = format!("run-{id}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let events = loop {
            let events = p.db.store().read_stream(&stream, 1).await.expect("read");
            if events.iter().any(|e| e.event_type == "VmCreated") {
                break events;
            }
            assert!(tokio::time::Instant::now() < deadline, "run {id} got no VM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let at = |kind: &str| {
            events
                .iter()
                .find(|e| e.event_type == kind)
                .map(|e| e.recorded_at)
        };
        let (Some(queued), Some(requested), Some(created)) =
            (at("Queued"), at("VmRequested"), at("VmCreated"))
        else {
            continue;
        };
        to_requested.push((requested - queued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        to_created.push((created - queued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    to_requested.sort_by(f64::total_cmp);
    to_created.sort_by(f64::total_cmp);
    println!(
        "{name:<9} {:>5} runs   Queued -> VmRequested p50 {:>7.2} ms  p99 {:>7.2} ms   Queued -> VmCreated p50 {:>7.2} ms  p99 {:>7.2} ms",
        to_requested.len(),
        percentile(&to_requested, 0.5),
        percentile(&to_requested, 0.99),
        percentile(&to_created, 0.5),
        percentile(&to_created, 0.99),
    );
    p.stop().await;
}

#[tokio::main]
async fn main() {
    let runs = std::env::var("SP_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    bench(Backend::Postgres, "postgres", runs).await;
    bench(Backend::Sqlite, "sqlite", runs).await;
}
