//! Test support: a fresh database per test on either backend, and the
//! conformance suite that every backend must pass.
//!
//! PostgreSQL tests use `SP_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets its own schema,
//! dropped afterwards. They fail, never skip, when the server does not answer.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::chain::{Break, BrokenLink};
use crate::{
    Database, DbOptions, EventStore, ExpectedVersion, LogFollower, LogPosition, Metadata, NewEvent,
    StoreError, StreamAppend,
};

pub const POSTGRES_URL_VAR: &str = "SP_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server tests run against.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that lives as long as the test.
#[derive(Debug)]
pub struct TestDb {
    pub database: Database,
    pub url: String,
    options: DbOptions,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    PostgresSchema { admin_url: String, schema: String },
    SqliteDir(#[allow(dead_code)] tempfile::TempDir),
}

impl TestDb {
    /// A fresh, migrated database on `backend`: [`TestDb::sqlite`] or
    /// [`TestDb::postgres`].
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A fresh SQLite file in a temporary directory, migrated.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let options = DbOptions::default();
        let database = open_migrated(&url, &options).await;
        TestDb {
            database,
            url,
            options,
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    /// A fresh schema on the test PostgreSQL server, migrated.
    pub async fn postgres() -> TestDb {
        let db = TestDb::postgres_unmigrated().await;
        db.database
            .migrate()
            .await
            .expect("migrate the test database");
        db
    }

    /// A fresh, empty schema on the test PostgreSQL server: for tests of
    /// the platform migrating it itself.
    pub async fn postgres_unmigrated() -> TestDb {
        let admin_url = postgres_url();
        let schema = format!("sp_t_{}", Uuid::new_v4().simple());
        let admin = connect_admin(&admin_url).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create a test schema");
        admin.close().await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        // The application name marks the test's connections, so that the
        // cleanup can end any a cancelled task left inside a transaction.
        let url = format!(
            "{admin_url}{separator}options=-c%20search_path%3D{schema}&application_name={schema}"
        );
        let options = DbOptions {
            notify_channel: schema.clone(),
            ..DbOptions::default()
        };
        let database = Database::open(&url, &options)
            .await
            .expect("open the test database");
        TestDb {
            database,
            url,
            options,
            cleanup: Cleanup::PostgresSchema { admin_url, schema },
        }
    }

    pub fn store(&self) -> Arc<dyn EventStore> {
        self.database.store.clone()
    }

    /// The same database opened again, as another process (or a restart) would.
    pub async fn reopen(&self) -> Database {
        open_migrated(&self.url, &self.options).await
    }

    /// Run SQL on the database behind the platform's back (a test's
    /// tampering, or time moved on).
    pub async fn behind_the_back(&self, sql: &str) {
        match &self.database.pool {
            crate::Pool::Sqlite { writer, .. } => {
                sqlx::query(sql).execute(writer).await.map(|_| ())
            }
            crate::Pool::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .expect("run SQL on the database");
    }

    pub fn options(&self) -> &DbOptions {
        &self.options
    }
}

async fn open_migrated(url: &str, options: &DbOptions) -> Database {
    let database = Database::open(url, options)
        .await
        .expect("open the test database");
    database.migrate().await.expect("migrate the test database");
    database
}

async fn connect_admin(url: &str) -> sqlx::PgPool {
    match sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
    {
        Ok(pool) => pool,
        Err(error) => panic!(
            "PostgreSQL is not reachable at {url} ({error}). Start it \
             (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) \
             or point {POSTGRES_URL_VAR} at a server where this user may create schemas."
        ),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::PostgresSchema { admin_url, schema } = &self.cleanup {
            // Drop runs inside the test's runtime, which cannot block on async
            // work: do it on a thread of its own.
            let (admin_url, schema) = (admin_url.clone(), schema.clone());
            let done = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect(&admin_url)
                        .await
                    else {
                        return;
                    };
                    // A test's runtime can end with a task inside a
                    // transaction: that connection would block the DROP forever.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(&schema)
                    .execute(&pool)
                    .await;
                    // Never hang a test run on cleanup: give up and leave the schema.
                    let _ = sqlx::query("SET lock_timeout = '10s'").execute(&pool).await;
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                });
            });
            let _ = done.join();
        }
    }
}

/// Tests on both backends: each scenario listed becomes a test
/// `sqlite::name` and a test `postgres::name` next to it. The calling crate
/// needs `tokio` among its (dev-)dependencies.
///
/// A list is one of:
///
/// - `name, name, …` (or `backend: name, …`): each an `async fn name(Backend)`,
///   run by `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`;
/// - `db: name, …`: each an `async fn name(TestDb)`, given a fresh migrated
///   database ([`TestDb::new`](crate::testing::TestDb::new)), run by the same
///   attribute;
/// - `sync: name, …`: each a `fn name(Backend)` that runs its own runtime,
///   run by `#[test]`.
///
/// Several lists, separated by `;`, may be given at once (a module holds one
/// `sqlite` and one `postgres`), each of the `backend:`, `db:` and `sync:`
/// forms preceded, if need be, by the attribute its tests get instead:
///
/// ```ignore
/// sp_eventstore::on_both_backends! {
///     #[tokio::test]
///     db: appends_once, reads_back;
///     #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
///     db: many_writers;
/// }
/// ```
#[macro_export]
macro_rules! on_both_backends {
    // One test on one backend.
    (@test $backend:ident backend [$attr:meta] $name:ident) => {
        #[$attr]
        async fn $name() {
            super::$name($crate::testing::Backend::$backend).await
        }
    };
    (@test $backend:ident db [$attr:meta] $name:ident) => {
        #[$attr]
        async fn $name() {
            super::$name($crate::testing::TestDb::new($crate::testing::Backend::$backend).await)
                .await
        }
    };
    (@test $backend:ident sync [$attr:meta] $name:ident) => {
        #[$attr]
        fn $name() {
            super::$name($crate::testing::Backend::$backend)
        }
    };
    (@test $backend:ident $kind:ident [$attr:meta] $name:ident) => {
        compile_error!(concat!(
            "on_both_backends!: `",
            stringify!($kind),
            ":` is none of `backend:`, `db:` and `sync:`"
        ));
    };
    // Every list on one backend, a list at a time.
    (@tests $backend:ident;) => {};
    (@tests $backend:ident; #[$attr:meta] $kind:ident : $($name:ident),+ $(,)? $(; $($rest:tt)*)?) => {
        $($crate::on_both_backends!(@test $backend $kind [$attr] $name);)+
        $crate::on_both_backends!(@tests $backend; $($($rest)*)?);
    };
    (@tests $backend:ident; backend : $($rest:tt)*) => {
        $crate::on_both_backends!(@tests $backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)] backend : $($rest)*);
    };
    (@tests $backend:ident; db : $($rest:tt)*) => {
        $crate::on_both_backends!(@tests $backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)] db : $($rest)*);
    };
    (@tests $backend:ident; sync : $($rest:tt)*) => {
        $crate::on_both_backends!(@tests $backend; #[test] sync : $($rest)*);
    };
    (@tests $backend:ident; $($rest:tt)*) => {
        compile_error!(concat!(
            "on_both_backends!: expected `name, …`, `db: name, …` or `sync: name, …` \
             (optionally after a test attribute), found: ",
            stringify!($($rest)*)
        ));
    };
    // A plain list: `async fn(Backend)` scenarios.
    ($($name:ident),+ $(,)?) => {
        $crate::on_both_backends!(backend: $($name),+);
    };
    ($($lists:tt)+) => {
        mod sqlite {
            $crate::on_both_backends!(@tests Sqlite; $($lists)+);
        }
        mod postgres {
            $crate::on_both_backends!(@tests Postgres; $($lists)+);
        }
    };
}

/// An event with a readable payload.
pub fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: kind.to_string(),
        schema_version: 1,
        data: json!({ "n": n }),
        metadata: Metadata::new("system:test", Uuid::new_v4()),
    }
}

fn batch(kind: &str, from: u64, len: u64) -> Vec<NewEvent> {
    (from..from + len).map(|n| event(kind, n)).collect()
}

/// Read the whole log from the start. Transactions of other tests running on
/// the same server can hold the horizon back for a moment: wait them out.
pub async fn read_everything(store: &dyn EventStore) -> Vec<crate::RecordedEvent> {
    let mut cursor = LogPosition::START;
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let batch = store.read_all(cursor, 1000).await.expect("read the log");
        let Some(last) = batch.events.last() else {
            if batch.held_back {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the log stayed held back"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            return all;
        };
        cursor = last.cursor();
        all.extend(batch.events);
    }
}

// ---------------------------------------------------------------------------
// The conformance suite. Every backend runs every function below.
// ---------------------------------------------------------------------------

/// Expected versions: no stream, exact and any; a conflict names the actual version.
pub async fn expected_versions_conflict(store: Arc<dyn EventStore>) {
    let s = "run-expected";
    let first = store
        .append(s, ExpectedVersion::NoStream, &batch("A", 0, 2))
        .await
        .expect("new stream");
    assert_eq!(first.last_version, 2);
    assert!(!first.already_appended);

    match store
        .append(s, ExpectedVersion::NoStream, &batch("A", 2, 1))
        .await
    {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, 2),
        other => panic!("appending to an existing stream as new: {other:?}"),
    }
    match store
        .append(s, ExpectedVersion::Exact(1), &batch("A", 2, 1))
        .await
    {
        Err(e @ StoreError::Conflict { actual: 2, .. }) => {
            assert!(e.to_string().contains("version 2"), "{e}");
        }
        other => panic!("stale expected version: {other:?}"),
    }
    let exact = store
        .append(s, ExpectedVersion::Exact(2), &batch("A", 2, 1))
        .await
        .expect("exact version");
    assert_eq!(exact.last_version, 3);
    let any = store
        .append(s, ExpectedVersion::Any, &batch("A", 3, 2))
        .await
        .expect("any version");
    assert_eq!(any.last_version, 5);
    match store
        .append("run-missing", ExpectedVersion::Exact(3), &batch("A", 0, 1))
        .await
    {
        Err(StoreError::Conflict { actual: 0, .. }) => {}
        other => panic!("exact version on a missing stream: {other:?}"),
    }
    let versions: Vec<u64> = store
        .read_stream(s, 1)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
}

/// A batch appended again (a retry after a lost reply) lands once.
pub async fn retried_appends_are_idempotent(store: Arc<dyn EventStore>) {
    let s = "run-idempotent";
    let events = batch("B", 0, 3);
    let first = store
        .append(s, ExpectedVersion::NoStream, &events)
        .await
        .expect("first append");
    // The same batch with the same (now stale) expectation, and with Any.
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Any,
        ExpectedVersion::Exact(0),
    ] {
        let again = store
            .append(s, expected, &events)
            .await
            .expect("a retried batch succeeds");
        assert!(again.already_appended);
        assert_eq!(again.last_version, first.last_version);
        assert_eq!(again.last_position, first.last_position);
    }
    assert_eq!(store.read_stream(s, 1).await.expect("read").len(), 3);

    // An id reused in another batch or stream is an error, not a silent no-op.
    let mut reused = batch("B", 10, 1);
    reused.push(events[0].clone());
    assert!(matches!(
        store.append(s, ExpectedVersion::Any, &reused).await,
        Err(StoreError::EventIdReused { .. })
    ));
    assert!(matches!(
        store
            .append("run-other", ExpectedVersion::Any, &events[..1])
            .await,
        Err(StoreError::EventIdReused { .. })
    ));
    // Bad batches are refused before they reach the database.
    assert!(matches!(
        store.append(s, ExpectedVersion::Any, &[]).await,
        Err(StoreError::Invalid(_))
    ));
    let twice = vec![events[1].clone(), events[1].clone()];
    assert!(matches!(
        store
            .append("run-twice", ExpectedVersion::Any, &twice)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(read_everything(&*store).await.len(), 3);
}

/// One append of 10,000 events (a catalogue import of as many tests): more
/// values than one SQLite statement may bind, in one transaction still.
pub async fn a_large_batch_lands_whole(store: Arc<dyn EventStore>) {
    let batch: Vec<NewEvent> = (0..10_000u64).map(|i| event("Big", i)).collect();
    let appended = store
        .append("catalogue-big", ExpectedVersion::NoStream, &batch)
        .await
        .expect("a 10,000-event append");
    assert_eq!(appended.last_version, 10_000);
    let read = store.read_stream("catalogue-big", 1).await.expect("read");
    assert_eq!(read.len(), 10_000);
    assert!(
        read.windows(2).all(|w| w[0].position < w[1].position),
        "positions follow versions"
    );
    assert_eq!(
        read.last().map(|e| e.position),
        Some(appended.last_position)
    );
    let again = store
        .append("catalogue-big", ExpectedVersion::NoStream, &batch)
        .await
        .expect("the same append again");
    assert!(again.already_appended, "a repeat is a no-op");
}

/// Streams read from a version; the log reads forward in batches; metadata
/// and payloads come back as written.
pub async fn reads_streams_and_the_log(store: Arc<dyn EventStore>) {
    let correlation = Uuid::new_v4();
    let cause = Uuid::new_v4();
    let mut written = Vec::new();
    for i in 0..5u64 {
        let mut e = event("C", i);
        e.metadata = Metadata::new("user:alice", correlation).caused_by(cause);
        written.push(e.clone());
        let stream = if i % 2 == 0 { "run-even" } else { "run-odd" };
        store
            .append(stream, ExpectedVersion::Any, &[e])
            .await
            .expect("append");
    }
    let even = store.read_stream("run-even", 2).await.expect("read");
    assert_eq!(
        even.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(
        store
            .read_stream("run-none", 1)
            .await
            .expect("read")
            .is_empty()
    );

    let mut cursor = LogPosition::START;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let batch = store.read_all(cursor, 2).await.expect("read the log");
        assert!(batch.events.len() <= 2);
        let Some(last) = batch.events.last() else {
            // An empty batch held back is not the end: events in flight
            // before the cursor are still to come.
            if batch.held_back {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the log stayed held back"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            break;
        };
        cursor = last.cursor();
        seen.extend(batch.events);
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    for (stored, original) in seen.iter().zip(&written) {
        assert_eq!(stored.event_id, original.event_id);
        assert_eq!(stored.data.to_value(), original.data);
        assert_eq!(stored.metadata, original.metadata);
        assert_eq!(stored.event_type, "C");
        let age = chrono::Utc::now() - stored.recorded_at;
        assert!(age >= chrono::Duration::zero() && age < chrono::Duration::minutes(1));
    }
    assert_eq!(
        store.head_position().await.expect("head"),
        seen.last().map(|e| e.position).unwrap_or(0)
    );
}

/// Several streams in one append: all land, in order, or none does.
pub async fn atomic_appends_to_several_streams(store: Arc<dyn EventStore>) {
    let first = vec![
        StreamAppend {
            stream: "run-a".into(),
            expected: ExpectedVersion::NoStream,
            events: batch("A", 0, 2),
        },
        StreamAppend {
            stream: "delivery-a".into(),
            expected: ExpectedVersion::NoStream,
            events: batch("D", 0, 1),
        },
    ];
    let landed = store.append_many(&first).await.expect("atomic append");
    assert_eq!(landed.len(), 2);
    assert_eq!((landed[0].last_version, landed[1].last_version), (2, 1));
    assert!(
        landed[0].last_position < landed[1].last_position,
        "batches land in the order given"
    );
    let log = read_everything(&*store).await;
    let order: Vec<&str> = log.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(order, vec!["A", "A", "D"]);

    // A retry of the same append (lost reply) writes nothing.
    let again = store.append_many(&first).await.expect("retried append");
    assert!(again.iter().all(|a| a.already_appended));
    assert_eq!(read_everything(&*store).await.len(), 3);

    // One stale expectation fails the whole append: nothing of it is written.
    let mixed = vec![
        StreamAppend {
            stream: "run-a".into(),
            expected: ExpectedVersion::Exact(2),
            events: batch("A", 2, 1),
        },
        StreamAppend {
            stream: "run-b".into(),
            expected: ExpectedVersion::NoStream,
            events: batch("B", 0, 1),
        },
        StreamAppend {
            stream: "delivery-a".into(),
            expected: ExpectedVersion::NoStream,
            events: batch("D", 1, 1),
        },
    ];
    match store.append_many(&mixed).await {
        Err(StoreError::Conflict { stream, actual, .. }) => {
            assert_eq!((stream.as_str(), actual), ("delivery-a", 1));
        }
        other => panic!("a stale stream in an atomic append: {other:?}"),
    }
    assert_eq!(
        read_everything(&*store).await.len(),
        3,
        "nothing of a failed append lands"
    );
    assert!(
        store
            .read_stream("run-b", 1)
            .await
            .expect("read")
            .is_empty()
    );

    let twice = vec![first[0].clone(), first[0].clone()];
    assert!(matches!(
        store.append_many(&twice).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.append_many(&[]).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Many writers at once while a follower reads: it sees every event exactly
/// once, each stream in version order, and contended streams keep their
/// versions dense.
pub async fn concurrent_writers_and_a_follower(
    store: Arc<dyn EventStore>,
    writers: usize,
    events_per_writer: u64,
    batch_len: u64,
) {
    let total = writers as u64 * events_per_writer;
    let follower_store = store.clone();
    let reader = tokio::spawn(async move {
        let mut follower = LogFollower::new(follower_store, LogPosition::START)
            .batch_size(257)
            .poll_interval(Duration::from_millis(200));
        let mut seen = Vec::new();
        while (seen.len() as u64) < total {
            seen.extend(follower.next_batch().await.expect("follow the log"));
        }
        seen
    });

    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("run-writer-{w}");
            let mut version = 0;
            let mut shared_version = 0;
            let mut n = 0;
            while n < events_per_writer {
                let len = batch_len.min(events_per_writer - n);
                // Every third batch goes to a stream all writers share, with
                // optimistic concurrency: on a conflict, retry at the version
                // the conflict names.
                if (n / batch_len) % 3 == 2 {
                    let events = batch("shared", n, len);
                    loop {
                        match store
                            .append(
                                "run-shared",
                                ExpectedVersion::Exact(shared_version),
                                &events,
                            )
                            .await
                        {
                            Ok(appended) => {
                                shared_version = appended.last_version;
                                break;
                            }
                            Err(StoreError::Conflict { actual, .. }) => shared_version = actual,
                            Err(e) => panic!("append: {e}"),
                        }
                    }
                } else {
                    let appended = store
                        .append(&own, ExpectedVersion::Exact(version), &batch("own", n, len))
                        .await
                        .expect("append to an own stream");
                    version = appended.last_version;
                }
                n += len;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("the follower saw everything in time")
        .expect("reader task");

    assert_eq!(seen.len() as u64, total, "every event exactly once");
    let unique: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(unique.len() as u64, total, "no event twice");
    let mut last_version: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &seen {
        let last = last_version.entry(e.stream_id.as_str()).or_insert(0);
        assert_eq!(
            e.stream_version,
            *last + 1,
            "stream {} out of order in the log",
            e.stream_id
        );
        *last = e.stream_version;
    }
    assert!(seen.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
    assert_eq!(read_everything(&*store).await.len() as u64, total);
    let chains = crate::audit::verify(&*store, |_| {})
        .await
        .expect("verify the log");
    assert_eq!(chains.broken, vec![], "every chain holds");
    assert_eq!(chains.events, total);
}

/// Every stream's hash chain holds after appends of every kind, writers
/// racing on one stream included, and a verification names each stream's
/// first event edited or removed behind the store's back.
pub async fn hash_chains_hold_and_name_tampering(db: &TestDb) {
    let store = db.store();
    store
        .append("run-a", ExpectedVersion::NoStream, &batch("a", 1, 3))
        .await
        .expect("append");
    // JSON that PostgreSQL's jsonb gives back in another form.
    let mut odd = event("odd", 0);
    odd.data = json!({"z": {"b": 1.5, "a": -0.0}, "big": 1e300, "one": 1.0,
                      "text": "é😀\"\n", "list": [2, 1e2, null, true],
                      "wide": [1e17, 1.152921504606847e18, 0.1, 1e-7, 123456.789e3]});
    store
        .append("run-a", ExpectedVersion::Exact(3), &[odd])
        .await
        .expect("append");
    let again = batch("a", 5, 2);
    for _ in 0..2 {
        store
            .append("run-a", ExpectedVersion::Exact(4), &again)
            .await
            .expect("append, then its retry");
    }
    store
        .append_many(&[
            StreamAppend {
                stream: "run-b".into(),
                expected: ExpectedVersion::NoStream,
                events: batch("b", 1, 3),
            },
            StreamAppend {
                stream: "run-c".into(),
                expected: ExpectedVersion::Any,
                events: batch("c", 1, 3),
            },
        ])
        .await
        .expect("append to two streams");
    // Sixteen writers append to one stream with no expectation: each link
    // must follow the one that really came before.
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..5 {
                    let event = [event("shared", w * 10 + n)];
                    loop {
                        match store
                            .append("run-shared", ExpectedVersion::Any, &event)
                            .await
                        {
                            Ok(_) => break,
                            // Lost every race of its retries: try again.
                            Err(StoreError::Conflict { .. }) => {}
                            Err(e) => panic!("append: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let all = read_everything(&*store).await;
    assert!(
        all.iter().all(|e| e.hash.is_some()),
        "every event has a link"
    );
    let clean = crate::audit::verify(&*store, |_| {}).await.expect("verify");
    assert_eq!(clean.broken, vec![]);
    assert_eq!((clean.events, clean.streams), (6 + 3 + 3 + 80, 4));

    db.behind_the_back(
        r#"UPDATE events SET data = '{"n": 99}' WHERE stream_id = 'run-b' AND stream_version = 2"#,
    )
    .await;
    db.behind_the_back("DELETE FROM events WHERE stream_id = 'run-c' AND stream_version = 2")
        .await;
    let position = |stream: &str, version: u64| {
        all.iter()
            .find(|e| e.stream_id == stream && e.stream_version == version)
            .map(|e| e.position)
            .expect("the event was appended")
    };
    let outcome = crate::audit::verify(&*store, |_| {}).await.expect("verify");
    assert_eq!(
        outcome.broken,
        vec![
            BrokenLink {
                stream: "run-b".into(),
                version: 2,
                position: position("run-b", 2),
                why: Break::Mismatch,
            },
            BrokenLink {
                stream: "run-c".into(),
                version: 3,
                position: position("run-c", 3),
                why: Break::Gap { expected: 2 },
            },
        ]
    );
    assert_ne!(outcome.digest, clean.digest);
}

/// Events written before hash chains (no link) get theirs when the
/// database is next migrated, a stream linked half-way included; once, so
/// a link removed after that stays missing.
pub async fn migrating_links_events_written_before_chains(db: &TestDb) {
    let store = db.store();
    store
        .append("run-old", ExpectedVersion::NoStream, &batch("old", 1, 4))
        .await
        .expect("append");
    store
        .append("run-half", ExpectedVersion::NoStream, &batch("half", 1, 4))
        .await
        .expect("append");
    // The database as a build before chains left it.
    db.behind_the_back(
        "UPDATE events SET hash = NULL
         WHERE stream_id = 'run-old' OR (stream_id = 'run-half' AND stream_version > 2)",
    )
    .await;
    db.behind_the_back("DELETE FROM event_chains").await;
    store
        .append("run-old", ExpectedVersion::Exact(4), &batch("old", 5, 1))
        .await
        .expect("append to a stream not linked yet");
    let before = crate::audit::verify(&*store, |_| {}).await.expect("verify");
    let broken: Vec<_> = before
        .broken
        .iter()
        .map(|b| (b.stream.as_str(), b.version, b.why.clone()))
        .collect();
    assert_eq!(
        broken,
        vec![
            ("run-old", 1, Break::Missing),
            ("run-half", 3, Break::Missing)
        ]
    );

    db.database.migrate().await.expect("migrate again");
    let after = crate::audit::verify(&*store, |_| {}).await.expect("verify");
    assert_eq!(after.broken, vec![]);
    assert_eq!(after.events, 9);
    store
        .append("run-half", ExpectedVersion::Exact(4), &batch("half", 5, 1))
        .await
        .expect("append after linking");
    let last = crate::audit::verify(&*store, |_| {}).await.expect("verify");
    assert_eq!((last.broken, last.events), (vec![], 10));

    // Linked once: a link removed now is a broken link, not one to make again.
    db.behind_the_back(
        "UPDATE events SET hash = NULL WHERE stream_id = 'run-half' AND stream_version = 5",
    )
    .await;
    db.database.migrate().await.expect("migrate again");
    let tampered = crate::audit::verify(&*store, |_| {}).await.expect("verify");
    let broken: Vec<_> = tampered
        .broken
        .iter()
        .map(|b| (b.stream.as_str(), b.version, b.why.clone()))
        .collect();
    assert_eq!(broken, vec![("run-half", 5, Break::Missing)]);
}

/// A follower waiting on an idle log wakes when an event is appended, long
/// before its polling fallback would.
pub async fn followers_wake_on_append(writer: Arc<dyn EventStore>, reader: Arc<dyn EventStore>) {
    let mut follower =
        LogFollower::new(reader, LogPosition::START).poll_interval(Duration::from_secs(3600));
    let waiting = tokio::spawn(async move { follower.next_batch().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "the follower waits on the idle log until something is appended"
    );
    writer
        .append("run-wake", ExpectedVersion::Any, &batch("W", 0, 1))
        .await
        .expect("append");
    let got = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the follower woke up without its hour-long poll")
        .expect("task")
        .expect("read");
    assert_eq!(got.len(), 1);
}

/// What was appended is there after the store is closed and opened again.
pub async fn survives_reopen(db: &TestDb) {
    let store = db.store();
    for i in 0..20 {
        store
            .append(
                &format!("run-{}", i % 4),
                ExpectedVersion::Any,
                &batch("R", i, 3),
            )
            .await
            .expect("append");
    }
    let before = read_everything(&*store).await;
    db.database.close().await;
    drop(store);

    let reopened = db.reopen().await;
    let after = read_everything(&*reopened.store).await;
    assert_eq!(after.len(), 60);
    assert_eq!(after, before);
    assert!(
        reopened
            .pending_migrations()
            .await
            .expect("check")
            .is_empty()
    );
    reopened.close().await;
}

/// PostgreSQL: a transaction that took an early position and commits late is
/// not skipped by a reader that saw later positions commit first.
pub async fn slow_transaction_is_not_skipped(db: &TestDb) {
    let crate::Pool::Postgres(pool) = &db.database.pool else {
        panic!("this check is about PostgreSQL's transaction horizon")
    };
    let store = db.store();
    let mut slow = pool.begin().await.expect("begin");
    let slow_id = Uuid::new_v4();
    let slow_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, recorded_at)
         VALUES ('run-slow', 1, $1, 'Slow', 1, '{}', $2, now()) RETURNING position",
    )
    .bind(slow_id)
    .bind(serde_json::to_value(Metadata::new("system:test", Uuid::new_v4())).expect("json"))
    .fetch_one(&mut *slow)
    .await
    .expect("insert in the slow transaction");

    // Later appends commit first, at higher positions.
    for i in 0..10 {
        let appended = store
            .append(
                &format!("run-fast-{i}"),
                ExpectedVersion::Any,
                &batch("Fast", i, 1),
            )
            .await
            .expect("append");
        assert!(appended.last_position > slow_position);
    }
    // While the slow transaction runs, nothing after its position is handed out.
    let early = store.read_all(LogPosition::START, 100).await.expect("read");
    assert!(
        early.events.is_empty(),
        "read past an uncommitted earlier position: {early:?}"
    );
    assert!(early.held_back);

    let follower_store = store.clone();
    let reader = tokio::spawn(async move {
        let mut follower = LogFollower::new(follower_store, LogPosition::START);
        let mut seen = Vec::new();
        while seen.len() < 11 {
            seen.extend(follower.next_batch().await.expect("follow"));
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    slow.commit().await.expect("commit the slow transaction");

    let seen = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the follower caught up")
        .expect("task");
    assert_eq!(seen.len(), 11);
    assert_eq!(
        seen[0].event_id, slow_id,
        "the slow event comes first in commit order"
    );
    assert_eq!(seen.iter().filter(|e| e.event_id == slow_id).count(), 1);
}

/// A NUL character anywhere in an event's strings is refused alike by every
/// backend (PostgreSQL cannot store one), as an input error that retrying
/// cannot fix, and nothing of the batch lands.
pub async fn nul_characters_are_refused_alike(store: Arc<dyn EventStore>) {
    let fine = event("Fine", 1);
    let mut in_value = event("Nul", 2);
    in_value.data = json!({ "report": { "lines": ["ok", "bad\u{0}byte"] } });
    let mut in_key = event("Nul", 3);
    in_key.data = json!({ "k\u{0}": 1 });
    let mut in_actor = event("Nul", 4);
    in_actor.metadata.actor = "user:a\u{0}b".into();
    for (bad, path) in [
        (in_value, Some("report.lines[1]")),
        (in_key, None),
        (in_actor, None),
    ] {
        let err = store
            .append("nul-test", ExpectedVersion::Any, &[fine.clone(), bad])
            .await
            .expect_err("a NUL is refused");
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(!err.is_transient(), "retrying cannot store a NUL: {err}");
        if let Some(path) = path {
            assert!(err.to_string().contains(path), "names the field: {err}");
        }
    }
    assert!(
        store
            .read_stream("nul-test", 1)
            .await
            .expect("read")
            .is_empty(),
        "nothing of a refused batch lands"
    );
    assert_eq!(
        crate::nul_path(&json!({ "a": [{ "b": "x\u{0}" }] })).as_deref(),
        Some("a[0].b")
    );
    assert_eq!(crate::nul_path(&json!({ "a": ["fine"] })), None);
}

/// Set a lease's token as a take-over does.
async fn set_lease(db: &TestDb, name: &str, token: i64) {
    let sql = "INSERT INTO leases (name, token, holder, acquired_at) VALUES ($1, $2, 'test', '2026-12-01T00:00:00Z')
               ON CONFLICT (name) DO UPDATE SET token = excluded.token";
    match &db.database.pool {
        crate::Pool::Sqlite { writer, .. } => sqlx::query(sql)
            .bind(name)
            .bind(token)
            .execute(writer)
            .await
            .map(|_| ()),
        crate::Pool::Postgres(pool) => {
            let sql = sql.replace("'2026-12-01T00:00:00Z'", "now()");
            sqlx::query(&sql)
                .bind(name)
                .bind(token)
                .execute(pool)
                .await
                .map(|_| ())
        }
    }
    .expect("set the lease");
}

/// A fenced append lands only while its lease still has its token: once
/// another instance has taken over, the deposed one writes nothing, and its
/// failure says why (and is not worth a retry).
pub async fn fenced_appends_land_only_under_the_current_token(db: &TestDb) {
    let store = db.store();
    let fence = |token| crate::Fence {
        lease: "managers".into(),
        token,
    };
    let one = |kind: &str, n| StreamAppend {
        stream: "fenced".into(),
        expected: ExpectedVersion::Any,
        events: vec![event(kind, n)],
    };
    // No lease row yet: nobody leads, nothing lands.
    let err = store
        .append_fenced(&fence(1), &[one("Early", 0)])
        .await
        .expect_err("no lease, no append");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");

    set_lease(db, "managers", 1).await;
    store
        .append_fenced(&fence(1), &[one("Leader1", 1)])
        .await
        .expect("the leader appends");
    set_lease(db, "managers", 2).await;
    let err = store
        .append_fenced(&fence(1), &[one("Deposed", 2)])
        .await
        .expect_err("a deposed leader's append is refused");
    assert!(
        matches!(err, StoreError::Fenced { token: 1, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient(), "retrying cannot make it lead again");
    let fenced_store = crate::FencedStore::new(store.clone(), fence(1));
    assert!(matches!(
        fenced_store
            .append("fenced", ExpectedVersion::Any, &[event("Deposed", 3)])
            .await,
        Err(StoreError::Fenced { .. })
    ));
    crate::FencedStore::new(store.clone(), fence(2))
        .append("fenced", ExpectedVersion::Any, &[event("Leader2", 4)])
        .await
        .expect("the new leader appends");
    let kinds: Vec<String> = store
        .read_stream("fenced", 1)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(kinds, vec!["Leader1", "Leader2"]);
}

/// Writers dropped at any point of their transaction (a timeout, a client
/// gone, an aborted task) leave the store writable. Each begin and append is
/// polled a few times, with real pauses for the database's threads between
/// polls, then dropped: across the rounds, every await point of a begin is
/// where some caller went away. Then a write must land.
pub async fn cancelled_writes_leave_the_store_writable(db: &TestDb) {
    let store = db.store();
    let mut round = 0u64;
    for polls in 1..=4u32 {
        for pause_us in [10u64, 30, 60, 100, 200, 400, 800] {
            for _ in 0..4 {
                let pause = Duration::from_micros(pause_us);
                drop_after_polls(crate::Tx::begin(&db.database.pool), polls, pause);
                // The pool takes a dropped connection back in a task of its own.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let stream = format!("run-cut-{round}");
                let events = [event("Cut", round)];
                drop_after_polls(
                    store.append(&stream, ExpectedVersion::Any, &events),
                    polls,
                    pause,
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
                round += 1;
            }
        }
    }
    let after = tokio::time::timeout(Duration::from_secs(10), async {
        let tx = crate::Tx::begin(&db.database.pool).await?;
        tx.commit().await?;
        store
            .append(
                "run-after-cuts",
                ExpectedVersion::NoStream,
                &[event("After", 0)],
            )
            .await
            .map_err(|e| match e {
                StoreError::Database(e) => e,
                other => sqlx::Error::Protocol(other.to_string()),
            })
    })
    .await
    .expect("a write after cancelled ones does not hang");
    assert!(
        after.is_ok(),
        "a write after cancelled ones fails: {after:?}"
    );
}

/// Poll `future` up to `polls` times, pausing the thread between polls (the
/// database answers on threads of its own), then drop it unfinished.
fn drop_after_polls<F: std::future::Future>(future: F, polls: u32, pause: Duration) {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..polls {
        if future.as_mut().poll(&mut cx).is_ready() {
            return;
        }
        std::thread::sleep(pause);
    }
}
