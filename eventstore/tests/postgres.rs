//! The conformance suite on PostgreSQL (`SP_TEST_POSTGRES_URL`).

use sp_eventstore::testing::{self, TestDb};

#[tokio::test]
async fn expected_versions_conflict() {
    testing::expected_versions_conflict(TestDb::postgres().await.store()).await;
}

#[tokio::test]
async fn retried_appends_are_idempotent() {
    testing::retried_appends_are_idempotent(TestDb::postgres().await.store()).await;
}

#[tokio::test]
async fn atomic_appends_to_several_streams() {
    testing::atomic_appends_to_several_streams(TestDb::postgres().await.store()).await;
}

#[tokio::test]
async fn reads_streams_and_the_log() {
    testing::reads_streams_and_the_log(TestDb::postgres().await.store()).await;
}

#[tokio::test]
async fn fenced_appends_land_only_under_the_current_token() {
    testing::fenced_appends_land_only_under_the_current_token(&TestDb::postgres().await).await;
}

#[tokio::test]
async fn nul_characters_are_refused_alike() {
    testing::nul_characters_are_refused_alike(TestDb::postgres().await.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_a_follower() {
    let db = TestDb::postgres().await;
    testing::concurrent_writers_and_a_follower(db.store(), 16, 500, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_event_writers_and_a_follower() {
    let db = TestDb::postgres().await;
    testing::concurrent_writers_and_a_follower(db.store(), 16, 200, 1).await;
}

/// Another replica on the same database is woken by `NOTIFY`, not by polling.
#[tokio::test]
async fn followers_in_another_process_wake_on_append() {
    let db = TestDb::postgres().await;
    let other_replica = db.reopen().await;
    testing::followers_wake_on_append(db.store(), other_replica.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_transaction_is_not_skipped() {
    testing::slow_transaction_is_not_skipped(&TestDb::postgres().await).await;
}

#[tokio::test]
async fn survives_reopen() {
    testing::survives_reopen(&TestDb::postgres().await).await;
}
