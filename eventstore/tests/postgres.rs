//! What only PostgreSQL (`SP_TEST_POSTGRES_URL`) runs; the conformance suite
//! is in `conformance.rs`.

use sp_eventstore::testing::{self, TestDb};

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
