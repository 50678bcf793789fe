//! Event store throughput on both backends, beside the physical limit: the same
//! rows written by a plain multi-row INSERT into a bare table through the same
//! driver, in the same run.
//!
//! `cargo bench -p sp-eventstore --bench store` (PostgreSQL from
//! `SP_TEST_POSTGRES_URL`). Set `SP_BENCH_SCALE` to a number other than 1 to
//! write more or fewer events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sp_eventstore::testing::{TestDb, event};
use sp_eventstore::{EventStore, ExpectedVersion, LogPosition, NewEvent, Pool};
use sqlx::{Postgres, QueryBuilder, Sqlite};

struct Row {
    backend: &'static str,
    scenario: String,
    events: u64,
    elapsed: Duration,
    plain: Option<Duration>,
}

impl Row {
    fn rate(events: u64, d: Duration) -> f64 {
        events as f64 / d.as_secs_f64()
    }

    fn print(&self) {
        let rate = Row::rate(self.events, self.elapsed);
        let (plain, ratio) = match self.plain {
            Some(p) => {
                let plain = Row::rate(self.events, p);
                (format!("{plain:>12.0}"), format!("{:>6.2}", rate / plain))
            }
            None => (format!("{:>12}", "-"), format!("{:>6}", "-")),
        };
        println!(
            "{:<9} {:<34} {:>7} {:>8.2}s {:>11.0} {} {}",
            self.backend,
            self.scenario,
            self.events,
            self.elapsed.as_secs_f64(),
            rate,
            plain,
            ratio
        );
    }
}

fn scale() -> u64 {
    std::env::var("SP_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn batch(len: u64) -> Vec<NewEvent> {
    (0..len).map(|n| event("BenchEvent", n)).collect()
}

/// `writers` tasks each append `batches` batches of `batch_len` to their own stream.
async fn appends(
    store: Arc<dyn EventStore>,
    writers: u64,
    batches: u64,
    batch_len: u64,
) -> Duration {
    let work: Vec<Vec<Vec<NewEvent>>> = (0..writers)
        .map(|_| (0..batches).map(|_| batch(batch_len)).collect())
        .collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, batches) in work.into_iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("run-bench-{w}-{}", uuid::Uuid::new_v4());
            let mut version = 0;
            for events in batches {
                version = store
                    .append(&stream, ExpectedVersion::Exact(version), &events)
                    .await
                    .expect("append")
                    .last_version;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed()
}

/// The same rows by plain multi-row INSERTs into a bare table: no unique keys,
/// no version check, no transaction-id column.
async fn plain_inserts(pool: &Pool, writers: u64, batches: u64, batch_len: u64) -> Duration {
    let create = "CREATE TABLE IF NOT EXISTS bench_plain (stream_id TEXT, stream_version BIGINT, event_id TEXT, \
                  event_type TEXT, schema_version INTEGER, data TEXT, metadata TEXT, recorded_at TEXT)";
    match pool {
        Pool::Postgres(p) => {
            sqlx::query(&create.replace("data TEXT, metadata TEXT", "data JSONB, metadata JSONB"))
                .execute(p)
                .await
                .expect("create");
        }
        Pool::Sqlite { writer, .. } => {
            sqlx::query(create).execute(writer).await.expect("create");
        }
    }
    let work: Vec<Vec<Vec<NewEvent>>> = (0..writers)
        .map(|_| (0..batches).map(|_| batch(batch_len)).collect())
        .collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for batches in work {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let now = chrono::Utc::now();
            for (i, events) in batches.into_iter().enumerate() {
                let sql = "INSERT INTO bench_plain (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at) ";
                match &pool {
                    Pool::Postgres(p) => {
                        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(sql);
                        q.push_values(&events, |mut b, e| {
                            b.push_bind("run-plain")
                                .push_bind(i as i64)
                                .push_bind(e.event_id.to_string())
                                .push_bind(&e.event_type)
                                .push_bind(e.schema_version as i32)
                                .push_bind(&e.data)
                                .push_bind(serde_json::to_value(&e.metadata).expect("json"))
                                .push_bind(now.to_rfc3339());
                        });
                        q.build().execute(p).await.expect("insert");
                    }
                    Pool::Sqlite { writer, .. } => {
                        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(sql);
                        q.push_values(&events, |mut b, e| {
                            b.push_bind("run-plain")
                                .push_bind(i as i64)
                                .push_bind(e.event_id.to_string())
                                .push_bind(e.event_type.clone())
                                .push_bind(e.schema_version as i32)
                                .push_bind(e.data.to_string())
                                .push_bind(serde_json::to_string(&e.metadata).expect("json"))
                                .push_bind(now.to_rfc3339());
                        });
                        q.build().execute(writer).await.expect("insert");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed()
}

async fn read_whole_log(store: &dyn EventStore) -> (u64, Duration) {
    let start = Instant::now();
    let mut cursor = LogPosition::START;
    let mut n = 0;
    loop {
        let batch = store.read_all(cursor, 1000).await.expect("read");
        let Some(last) = batch.events.last() else {
            break;
        };
        cursor = last.cursor();
        n += batch.events.len() as u64;
    }
    (n, start.elapsed())
}

async fn bench(backend: &'static str, db: TestDb, single: u64, batches_per_writer: u64) {
    let store = db.store();
    let pool = db.database.pool.clone();

    let elapsed = appends(store.clone(), 1, single, 1).await;
    let plain = plain_inserts(&pool, 1, single, 1).await;
    Row {
        backend,
        scenario: "1 writer, 1-event appends".into(),
        events: single,
        elapsed,
        plain: Some(plain),
    }
    .print();

    let elapsed = appends(store.clone(), 16, batches_per_writer, 10).await;
    let plain = plain_inserts(&pool, 16, batches_per_writer, 10).await;
    Row {
        backend,
        scenario: "16 writers, 10-event batches".into(),
        events: 16 * batches_per_writer * 10,
        elapsed,
        plain: Some(plain),
    }
    .print();

    let (n, elapsed) = read_whole_log(&*store).await;
    Row {
        backend,
        scenario: "read the whole log (1000/batch)".into(),
        events: n,
        elapsed,
        plain: None,
    }
    .print();
}

#[tokio::main]
async fn main() {
    let s = scale();
    println!(
        "{:<9} {:<34} {:>7} {:>9} {:>11} {:>12} {:>6}",
        "backend", "scenario", "events", "time", "events/s", "plain ins/s", "ratio"
    );
    bench("postgres", TestDb::postgres().await, 2000 * s, 100 * s).await;
    bench("sqlite", TestDb::sqlite().await, 500 * s, 25 * s).await;
}
