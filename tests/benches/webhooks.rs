//! Webhook intake under load: signed `pull_request` deliveries at increasing
//! concurrency against the platform on loopback, on both backends. Prints
//! deliveries/s and latency percentiles, then how long a run takes from the
//! 202 to being visible in the queue read model.
//!
//! `cargo bench -p sp-tests --bench webhooks` (PostgreSQL from
//! `SP_TEST_POSTGRES_URL`; `SP_BENCH_DELIVERIES` deliveries per level, default 2000).

use std::time::{Duration, Instant};

use sp_eventstore::Pool;
use sp_tests::github;
use sp_tests::{Backend, TestPlatform};

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

/// A distinct pull request per delivery: each queues one run.
fn delivery(n: u64) -> (String, serde_json::Value) {
    let sha = format!("{:040x}", 0xbe00_0000_u64 + n);
    let payload =
        github::pull_request("opened", 100_000 + n, &sha, "2026-11-30T10:00:00Z", "bench");
    (format!("bench-{n}-{}", uuid::Uuid::new_v4()), payload)
}

async fn deliveries_at(p: &TestPlatform, concurrency: usize, total: u64, offset: u64) {
    let per_task = total / concurrency as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency as u64 {
        let client = p.http.clone();
        let base = p.base.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task as usize);
            for i in 0..per_task {
                let (id, payload) = delivery(offset + t * per_task + i);
                let body = payload.to_string();
                let signature =
                    sp_api::github::signature::sign(sp_tests::SECRET.as_bytes(), body.as_bytes());
                let sent = Instant::now();
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
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    println!(
        "{:>11} {:>10} {:>13.0} {:>9.2} {:>9.2}",
        concurrency,
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
    );
}

async fn in_queue(pool: &Pool, run_id: &str) -> bool {
    let sql = "SELECT COUNT(*) FROM queue_entries WHERE run_id = $1";
    let n: i64 = match pool {
        Pool::Postgres(p) => sqlx::query_scalar(sql)
            .bind(run_id)
            .fetch_one(p)
            .await
            .expect("query"),
        Pool::Sqlite { reader, .. } => sqlx::query_scalar(sql)
            .bind(run_id)
            .fetch_one(reader)
            .await
            .expect("query"),
    };
    n == 1
}

async fn visibility(p: &TestPlatform, samples: u64, offset: u64) {
    let mut waits = Vec::new();
    for n in 0..samples {
        let (id, payload) = delivery(offset + n);
        let (status, body) = p.deliver("pull_request", &id, &payload).await;
        assert_eq!(status, 202);
        let accepted = Instant::now();
        let run = body["runs"][0].as_str().unwrap_or_default().to_string();
        while !in_queue(&p.db.database.pool, &run).await {
            assert!(
                accepted.elapsed() < Duration::from_secs(10),
                "run {run} never showed in the queue"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        waits.push(accepted.elapsed());
    }
    waits.sort();
    println!(
        "  202 -> visible in the queue, {} samples: p50 {:.2} ms, p99 {:.2} ms",
        waits.len(),
        ms(percentile(&waits, 0.5)),
        ms(percentile(&waits, 0.99))
    );
}

async fn bench(backend: Backend, name: &str, total: u64) {
    let p = TestPlatform::start_with(backend, |mut s| {
        s.platforms = vec!["linux".into()];
        s.log = "error".into();
        s
    })
    .await;
    println!("{name}:");
    println!(
        "{:>11} {:>10} {:>13} {:>9} {:>9}",
        "concurrency", "deliveries", "deliveries/s", "p50 ms", "p99 ms"
    );
    let mut offset = 0;
    for concurrency in [1, 4, 16, 64] {
        deliveries_at(&p, concurrency, total, offset).await;
        offset += total;
    }
    p.caught_up().await;
    visibility(&p, 200, offset).await;
    p.stop().await;
}

#[tokio::main]
async fn main() {
    let total = std::env::var("SP_BENCH_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    bench(Backend::Postgres, "postgres", total).await;
    bench(Backend::Sqlite, "sqlite", total).await;
}
