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
async fn reads_streams_and_the_log() {
    testing::reads_streams_and_the_log(TestDb::sqlite().await.store()).await;
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
