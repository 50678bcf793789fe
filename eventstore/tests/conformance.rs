//! The conformance suite (`sp_eventstore::testing`) on both backends, as
//! `sqlite::…` and `postgres::…`; `sqlite.rs` and `postgres.rs` hold what
//! only one backend runs.

use sp_eventstore::testing::{self, TestDb};

async fn expected_versions_conflict(db: TestDb) {
    testing::expected_versions_conflict(db.store()).await;
}

async fn retried_appends_are_idempotent(db: TestDb) {
    testing::retried_appends_are_idempotent(db.store()).await;
}

async fn atomic_appends_to_several_streams(db: TestDb) {
    testing::atomic_appends_to_several_streams(db.store()).await;
}

async fn reads_streams_and_the_log(db: TestDb) {
    testing::reads_streams_and_the_log(db.store()).await;
}

async fn a_large_batch_lands_whole(db: TestDb) {
    testing::a_large_batch_lands_whole(db.store()).await;
}

async fn fenced_appends_land_only_under_the_current_token(db: TestDb) {
    testing::fenced_appends_land_only_under_the_current_token(&db).await;
}

async fn nul_characters_are_refused_alike(db: TestDb) {
    testing::nul_characters_are_refused_alike(db.store()).await;
}

async fn hash_chains_hold_and_name_tampering(db: TestDb) {
    testing::hash_chains_hold_and_name_tampering(&db).await;
}

async fn migrating_links_events_written_before_chains(db: TestDb) {
    testing::migrating_links_events_written_before_chains(&db).await;
}

async fn survives_reopen(db: TestDb) {
    testing::survives_reopen(&db).await;
}

async fn concurrent_writers_and_a_follower(db: TestDb) {
    testing::concurrent_writers_and_a_follower(db.store(), 16, 500, 10).await;
}

async fn cancelled_writes_leave_the_store_writable(db: TestDb) {
    testing::cancelled_writes_leave_the_store_writable(&db).await;
}

sp_eventstore::on_both_backends! {
    #[tokio::test]
    db:
        expected_versions_conflict,
        retried_appends_are_idempotent,
        atomic_appends_to_several_streams,
        reads_streams_and_the_log,
        a_large_batch_lands_whole,
        fenced_appends_land_only_under_the_current_token,
        nul_characters_are_refused_alike,
        migrating_links_events_written_before_chains,
        survives_reopen;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    db: hash_chains_hold_and_name_tampering;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    db: concurrent_writers_and_a_follower;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    db: cancelled_writes_leave_the_store_writable;
}
