//! `audit export`, `audit import`, `audit verify` (of the database and of an
//! export) and the migration's linking of an unchained log: throughput on a
//! log of N events
//! (`SP_BENCH_EVENTS`, default 1,000,000), on each backend
//! (`SP_BENCH_BACKENDS`, default `postgres,sqlite`), beside reading the log
//! alone in the same run: `cargo bench -p sp-tests --bench audit`.

use std::io::{BufReader, BufWriter};
use std::time::Instant;

use serde_json::json;
use sp_eventstore::audit::{Filter, export, import, verify, verify_export};
use sp_eventstore::testing::TestDb;
use sp_eventstore::{EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent, StreamAppend};
use uuid::Uuid;

/// Events per stream, and streams per append.
const PER_STREAM: usize = 100;
const STREAMS_PER_APPEND: usize = 10;

async fn database(backend: &str) -> TestDb {
    match backend {
        "postgres" => TestDb::postgres().await,
        "sqlite" => TestDb::sqlite().await,
        other => panic!("SP_BENCH_BACKENDS: {other:?} is neither postgres nor sqlite"),
    }
}

/// A log of `n` events shaped like a run's progress reports.
async fn fill(store: &dyn EventStore, n: usize) {
    let mut written = 0;
    while written < n {
        let appends: Vec<StreamAppend> = (0..STREAMS_PER_APPEND)
            .map(|_| {
                let stream = format!("run-{}", Uuid::new_v4());
                let correlation = Uuid::new_v4();
                StreamAppend {
                    stream,
                    expected: ExpectedVersion::NoStream,
                    events: (0..PER_STREAM)
                        .map(|i| NewEvent {
                            event_id: Uuid::now_v7(),
                            event_type: "Progress".into(),
                            schema_version: 1,
                            data: json!({
                                "at": "2026-12-07T10:00:00Z", "attempt": 1, "stage": "testing",
                                "message": format!("test {i} of {PER_STREAM}"), "done": i, "total": PER_STREAM,
                            }),
                            metadata: Metadata::new("runner:bench/1", correlation),
                        })
                        .collect(),
                }
            })
            .collect();
        store.append_many(&appends).await.expect("fill the log");
        written += STREAMS_PER_APPEND * PER_STREAM;
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("SP_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let backends = std::env::var("SP_BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let source = database(backend).await;
        let store = &*source.database.store;
        fill(store, n).await;

        let started = Instant::now();
        let (mut cursor, mut read) = (LogPosition::START, 0usize);
        loop {
            let batch = store.read_all(cursor, 1000).await.expect("read");
            let Some(last) = batch.events.last() else {
                break;
            };
            cursor = last.cursor();
            read += batch.events.len();
        }
        let read_rate = read as f64 / started.elapsed().as_secs_f64();

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("log.jsonl");
        let started = Instant::now();
        let mut out = BufWriter::new(std::fs::File::create(&path).expect("create"));
        let exported = export(store, &Filter::default(), &mut out, |_| {})
            .await
            .expect("export");
        drop(out);
        let export_rate = exported as f64 / started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

        let target = database(backend).await;
        let started = Instant::now();
        let input = BufReader::new(std::fs::File::open(&path).expect("open"));
        let imported = import(&target.database, input, |_| {})
            .await
            .expect("import")
            .events;
        let import_rate = imported as f64 / started.elapsed().as_secs_f64();

        let started = Instant::now();
        let verified = verify(store, |_| {}).await.expect("verify");
        let verify_rate = verified.events as f64 / started.elapsed().as_secs_f64();
        assert_eq!(verified.broken, vec![]);
        let started = Instant::now();
        let input = BufReader::new(std::fs::File::open(&path).expect("open"));
        let offline = verify_export(input, |_| {}).expect("verify the export");
        let offline_rate = offline.events as f64 / started.elapsed().as_secs_f64();
        assert_eq!(
            offline.digest, verified.digest,
            "the export verifies as the log"
        );

        // A log written before chains: the migration links it once.
        for sql in ["UPDATE events SET hash = NULL", "DELETE FROM event_chains"] {
            match &target.database.pool {
                sp_eventstore::Pool::Postgres(pool) => {
                    sqlx::query(sql).execute(pool).await.map(|_| ())
                }
                sp_eventstore::Pool::Sqlite { writer, .. } => {
                    sqlx::query(sql).execute(writer).await.map(|_| ())
                }
            }
            .expect("unlink");
        }
        let started = Instant::now();
        target.database.migrate().await.expect("link");
        let link_rate = imported as f64 / started.elapsed().as_secs_f64();

        println!(
            "{backend:<8} audit  {n} events: export {export_rate:>8.0} events/s ({:.0} MiB), import {import_rate:>8.0} events/s, \
             verify {verify_rate:>8.0} events/s (export offline {offline_rate:.0}), migration linking {link_rate:.0} events/s \
             | limit: reading the log alone {read_rate:.0} events/s",
            bytes as f64 / (1024.0 * 1024.0)
        );
        assert_eq!((exported, imported), (read as u64, read as u64));
    }
}
