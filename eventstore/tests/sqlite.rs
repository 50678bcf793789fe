//! The conformance suite on SQLite.

use sp_eventstore::testing::{self, TestDb};

#[tokio::test]
async fn expected_versions_conflict() {
    testing::expected_versions_conflict(TestDb::sqlite().await.store()).await;
}

#[tokio::test]
async fn retried_appends_are_idempotent() {
    testing::retried_appends_are_idempotent(TestDb::sqlite().await.store()).await;
}

#[tokio::test]
async fn atomic_appends_to_several_streams() {
    testing::atomic_appends_to_several_streams(TestDb::sqlite().await.store()).await;
}

#[tokio::test]
async fn reads_streams_and_the_log() {
    testing::reads_streams_and_the_log(TestDb::sqlite().await.store()).await;
}

#[tokio::test]
async fn fenced_appends_land_only_under_the_current_token() {
    testing::fenced_appends_land_only_under_the_current_token(&TestDb::sqlite().await).await;
}

#[tokio::test]
async fn nul_characters_are_refused_alike() {
    testing::nul_characters_are_refused_alike(TestDb::sqlite().await.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_follower() {
    let db = TestDb::sqlite().await;
    testing::concurrent_writers_and_a_follower(db.store(), 16, 500, 10).await;
}

#[tokio::test]
async fn followers_wake_on_append() {
    let db = TestDb::sqlite().await;
    testing::followers_wake_on_append(db.store(), db.store()).await;
}

#[tokio::test]
async fn survives_reopen() {
    testing::survives_reopen(&TestDb::sqlite().await).await;
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
