//! What only SQLite runs; the conformance suite is in `conformance.rs`.

use sp_eventstore::testing::{self, TestDb};

/// In one process the follower is woken by the store it shares with the
/// writer (PostgreSQL's version wakes another replica through `NOTIFY`).
#[tokio::test]
async fn followers_wake_on_append() {
    let db = TestDb::sqlite().await;
    testing::followers_wake_on_append(db.store(), db.store()).await;
}

/// The platform opens the file, serves `/readyz` (reading through the reader
/// pool) and only then migrates: readers opened before must see the schema.
#[tokio::test]
async fn readers_opened_before_the_migration_see_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let db = sp_eventstore::Database::open(&url, &sp_eventstore::DbOptions::default())
        .await
        .expect("open");
    assert!(!db.pending_migrations().await.expect("check").is_empty());
    db.migrate().await.expect("migrate");
    assert!(db.pending_migrations().await.expect("check").is_empty());
    let batch = db
        .store
        .read_all(sp_eventstore::LogPosition::START, 10)
        .await
        .expect("the reader sees the events table");
    assert!(batch.events.is_empty());
    let sp_eventstore::Pool::Sqlite { reader, .. } = &db.pool else {
        unreachable!("a sqlite URL")
    };
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projection_checkpoints")
        .fetch_one(reader)
        .await
        .expect("the reader sees the tables of every migration");
    assert_eq!(n, 0);
}
