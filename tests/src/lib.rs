//! Shared helpers for the workspace-level integration tests: the platform
//! started in process on `127.0.0.1:0` over a fresh database, signed GitHub
//! deliveries in GitHub's payload shapes, and a GraphQL client.
//!
//! - [`TestPlatform`]: the platform serving on loopback on either [`Backend`],
//!   stopped when dropped; it delivers webhooks, queries GraphQL, reads a
//!   run's events, waits for the read models to catch up, and dumps or
//!   rebuilds every read model. [`demo_runner`] and [`demo_dir`] set it up to
//!   run the demo catalogue for real.
//! - [`on_both_backends!`]: a test generated under `sqlite::` and `postgres::`.
//! - [`signed`] and [`SECRET`]: the `X-Hub-Signature-256` GitHub would send;
//!   [`github`]: webhook payloads in the shapes GitHub documents.
//! - [`events`]: one example of every variant of every stored event family,
//!   for the codec tests.
//! - [`fake_github`] and [`fake_compute`]: GitHub's REST API and Compute
//!   Engine, faked on loopback, with failures on demand.
//! - [`eventually`]: poll until a check gives a value; fail after ten seconds.

pub mod events;
pub mod fake_compute;
pub mod fake_github;
pub mod fake_oauth;
pub mod github;
pub mod harness;
pub mod people;

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use sp_api::Settings;
use sp_api::github::signature;
use sp_eventstore::testing::TestDb;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-webhook-secret";

/// The `X-Hub-Signature-256` GitHub would send with `body`.
pub fn signed(body: &str) -> String {
    signature::sign(SECRET.as_bytes(), body.as_bytes())
}

/// The demo: a program under test, three samples, a catalogue of three
/// regression tests (one passes, one passes on a variant, one fails).
pub fn demo_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo")
}

/// Settings that run the demo catalogue for real: process managers on, one
/// linux platform, the demo program as every commit's build, and local VMs
/// running `runner` (the `sample-runner` binary of the calling test).
pub fn demo_runner(runner: &'static str) -> impl FnOnce(Settings) -> Settings {
    move |mut s| {
        s.managers = true;
        s.platforms = vec!["linux".into()];
        s.catalogue = Some(demo_dir().join("catalogue.toml"));
        s.artifact_source = format!("file://{}", demo_dir().join("upcase.sh").display());
        s.local_vm_command = format!("exec {runner}");
        s.per_test_timeout_secs = 20;
        s
    }
}

/// A file of `tests/data`.
pub fn test_data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// The GitHub App of the tests: its id; its key pair is
/// `tests/data/github-app-test-key{,.pub}.pem`, made for tests only.
pub const TEST_APP_ID: u64 = 777;

/// Settings that call GitHub at `api_url` as the test App and report check
/// runs instead of commit statuses.
pub fn as_github_app(mut s: Settings, api_url: &str) -> Settings {
    s.github_api_url = api_url.to_string();
    s.github_app_id = Some(TEST_APP_ID);
    s.github_app_key = Some(test_data("github-app-test-key.pem"));
    s.github_reports = "check_runs".into();
    s
}

/// The demo catalogue's results on "master at 2" in the GitHub tests:
/// upper-hello passes, upper-fox fails with one output (`a…`), upper-broken
/// fails (it should exit 2).
pub fn demo_base_results() -> Vec<Value> {
    vec![
        demo_result("upper-hello", 0, "equal"),
        demo_result("upper-fox", 0, &"a".repeat(64)),
        demo_result("upper-broken", 0, &"b".repeat(64)),
    ]
}

/// A runner's result report for one test of the demo catalogue: its exit
/// code and the hash of its `upper.txt` (`"equal"`: the approved one).
pub fn demo_result(test: &str, exit_code: i32, upper: &str) -> Value {
    let produced = if upper == "equal" {
        json!({ "kind": "equal" })
    } else {
        json!({ "kind": "sha256", "sha256": upper })
    };
    json!({ "client_id": uuid::Uuid::new_v4(), "kind": "result", "result": {
        "test_id": test, "exit_code": exit_code, "runtime_ms": 5,
        "outputs": [
            { "name": "upper.txt", "produced": produced },
            { "name": "words.txt", "produced": { "kind": "equal" } }
        ] } })
}

/// A catalogue of `n` regression tests (`t00000`, …) of the demo program on
/// its hello sample, each passing on its approved `upper.txt`: a run of any
/// size. Written to `dir/catalogue.toml`.
pub fn generated_catalogue(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    use std::fmt::Write as _;
    let sample = demo_dir().join("samples/hello.txt");
    let mut toml = format!(
        "[[samples]]\nname = \"hello.txt\"\nsha256 = \"a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\"\npath = \"{}\"\n",
        sample.display()
    );
    for i in 0..n {
        let _ = write!(
            toml,
            "\n[[tests]]\nid = \"t{i:05}\"\nsample = \"hello.txt\"\ncommand = \"{{exe}} {{sample}} {{outdir}}\"\ncategories = [\"generated\"]\n[[tests.outputs]]\nname = \"upper.txt\"\napproved_sha256 = \"2949725604dd9eef82100f8ff39fcced9d3682700ee2fb5c4205e3e584defee6\"\n"
        );
    }
    let path = dir.join("catalogue.toml");
    std::fs::write(&path, toml).expect("write the catalogue");
    path
}

/// Run each scenario `fn(Backend)` as a test on SQLite and on PostgreSQL
/// (see `sp_eventstore::on_both_backends!` for its other forms).
pub use sp_eventstore::on_both_backends;
/// The database a test runs on; [`on_both_backends!`] runs a scenario on each.
pub use sp_eventstore::testing::Backend;

/// A platform serving on loopback, stopped when dropped.
#[derive(Debug)]
pub struct TestPlatform {
    pub base: String,
    pub db: TestDb,
    pub http: reqwest::Client,
    /// Local VMs and artifacts live here.
    pub dir: tempfile::TempDir,
    pub settings: Settings,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl TestPlatform {
    /// Linux and windows platforms, the webhook secret set, no process
    /// managers (runs stay where the intake puts them) unless `adjust` turns
    /// them on.
    pub async fn start(backend: Backend) -> TestPlatform {
        TestPlatform::start_with(backend, |s| s).await
    }

    pub async fn start_with(
        backend: Backend,
        adjust: impl FnOnce(Settings) -> Settings,
    ) -> TestPlatform {
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let settings = adjust(Settings {
            database_url: db.url.clone(),
            deployment: db.options().notify_channel.clone(),
            github_webhook_secret: Some(SECRET.into()),
            platforms: vec!["linux".into(), "windows".into()],
            log: "warn".into(),
            local_vm_dir: dir.path().join("vms"),
            object_store: dir.path().join("objects").display().to_string(),
            reconcile_every_secs: 1,
            managers: false,
            // Never the default (this binary as a runner: here, the test harness).
            local_vm_command: "sleep 600".into(),
            ..Settings::default()
        });
        let serving = settings.clone();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            if let Err(e) = sp_api::serve::serve(listener, serving, stop).await {
                panic!("the platform stopped: {e:#}");
            }
        });
        let platform = TestPlatform {
            base,
            db,
            http: reqwest::Client::new(),
            dir,
            settings,
            shutdown,
            server: Some(server),
        };
        platform.wait_ready().await;
        platform
    }

    pub async fn wait_ready(&self) {
        wait_ready(&self.http, &self.base).await;
    }

    /// Another replica of the platform: the same settings and database, its
    /// own port. Stopped when dropped.
    pub async fn replica(&self) -> Replica {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let (serving, stop) = (self.settings.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = sp_api::serve::serve(listener, serving, stop).await {
                panic!("the replica stopped: {e:#}");
            }
        });
        wait_ready(&self.http, &base).await;
        Replica { base, shutdown }
    }

    /// Deliver a webhook signed with the platform's secret.
    pub async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> (u16, Value) {
        let body = payload.to_string();
        let signature = signed(&body);
        self.deliver_raw(event, delivery, body.into_bytes(), Some(&signature))
            .await
    }

    pub async fn deliver_raw(
        &self,
        event: &str,
        delivery: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/webhooks/github", self.base))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            request = request.header("X-Hub-Signature-256", sig);
        }
        let response = request.send().await.expect("deliver");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Run a GraphQL operation; returns the whole response (data and errors).
    pub async fn graphql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("graphql request");
        assert_eq!(response.status(), 200, "GraphQL over HTTP answers 200");
        response.json().await.expect("graphql JSON")
    }

    /// Send a runner's report for `run` with `token`: the status and the answer.
    pub async fn report(&self, run: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/runner/v1/runs/{run}/reports", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("report");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET` a path of the platform: the status and the body as text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// What the platform's event store has read and written so far, by its
    /// own counters (`/readyz` says).
    pub async fn store_counts(&self) -> sp_eventstore::StoreCounts {
        let (_, r) = self.readyz().await;
        let count = |name: &str| {
            r["store"][name]
                .as_u64()
                .unwrap_or_else(|| panic!("/readyz says no store.{name}: {r}"))
        };
        sp_eventstore::StoreCounts {
            rows_read: count("rows_read"),
            events_written: count("events_written"),
        }
    }

    /// `/readyz`: its status and its JSON (null when it is not JSON).
    pub async fn readyz(&self) -> (u16, Value) {
        self.readyz_of(&self.base).await
    }

    /// `/readyz` of the platform (or a [`Replica`]) at `base`.
    pub async fn readyz_of(&self, base: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("GET /readyz");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A GraphQL query that must succeed: its `data`.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql(query, variables, None).await;
        assert!(
            response.get("errors").is_none(),
            "GraphQL errors: {response}"
        );
        response["data"].clone()
    }

    /// A run's events: (type, data), in order.
    pub async fn run_events(&self, run: &str) -> Vec<(String, Value)> {
        self.db
            .store()
            .read_stream(&format!("run-{run}"), 1)
            .await
            .expect("read the run's events")
            .into_iter()
            .map(|e| (e.event_type, e.data.to_value()))
            .collect()
    }

    /// Wait (up to a minute: real processes, real deadlines) until the run
    /// records `kind`; its events then.
    pub async fn until(&self, run: &str, kind: &str) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let events = self.run_events(run).await;
            if events.iter().any(|(t, _)| t == kind) {
                return events;
            }
            let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run} never recorded {kind}: {types:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Events in the log.
    pub async fn event_count(&self) -> usize {
        sp_eventstore::testing::read_everything(&*self.db.store())
            .await
            .len()
    }

    /// A signed push of commit `sha(after)` to master; the first run it queued.
    pub async fn push(&self, delivery: &str, after: char) -> String {
        let (status, body) = self
            .deliver(
                "push",
                delivery,
                &github::push("master", &github::sha('1'), &github::sha(after), "dev"),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["runs"][0]
            .as_str()
            .unwrap_or_else(|| panic!("the push queued no run: {body}"))
            .to_string()
    }

    /// A pushed commit's run with its VM created (the managers must be on),
    /// and the credential of its first attempt's runner: what a runner on
    /// that VM would start with.
    pub async fn started_run(&self, delivery: &str, after: char) -> (String, String) {
        let run = self.push(delivery, after).await;
        self.until(&run, "VmCreated").await;
        let credential = self.runner_credential(&run, 1).await;
        (run, credential)
    }

    /// A signed `pull_request` delivery (`action`) of pull request `number`
    /// with head `sha(head)` onto base commit `sha(base)`, as of `at`; the
    /// first run it queued.
    pub async fn pull_request(
        &self,
        delivery: &str,
        action: &str,
        number: u64,
        (head, base): (char, char),
        at: &str,
    ) -> String {
        let payload = github::onto(
            github::pull_request(action, number, &github::sha(head), at, "contributor"),
            &github::sha(base),
        );
        let (status, body) = self.deliver("pull_request", delivery, &payload).await;
        assert_eq!(status, 202, "{body}");
        body["runs"][0]
            .as_str()
            .unwrap_or_else(|| panic!("the pull request queued no run: {body}"))
            .to_string()
    }

    /// Report `results` for the run's first attempt as its runner would
    /// (see [`demo_result`]) and finish it; returns once it completed.
    pub async fn finish_run(&self, run: &str, results: &[Value]) {
        self.until(run, "VmCreated").await;
        let token = self.runner_credential(run, 1).await;
        for r in results {
            let (status, body) = self.report(run, &token, r).await;
            assert_eq!(status, 202, "{body}");
        }
        let finish = json!({ "client_id": uuid::Uuid::new_v4(), "kind": "finish" });
        let (status, body) = self.report(run, &token, &finish).await;
        assert_eq!(status, 202, "{body}");
        self.until(run, "Completed").await;
    }

    /// The credential the platform gives a run attempt's runner.
    pub async fn runner_credential(&self, run: &str, attempt: u32) -> String {
        sp_managers::RunnerKeys::load_or_create(&self.db.database)
            .await
            .expect("the runner keys")
            .credential(run, attempt)
    }

    /// A token with `scopes`, as `sample-platform tokens create` makes one.
    pub async fn token(&self, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        sp_api::auth::create(&self.db.database, name, &scopes, "user:test-operator")
            .await
            .expect("create a token")
    }

    /// Every row of every table of every standard read model, as JSON text
    /// sorted per table: two dumps are equal exactly when the models are, and
    /// a model added to [`sp_projections::standard`] is compared without
    /// anyone remembering to.
    pub async fn read_models(&self) -> Value {
        read_model_dump(&self.db.database).await
    }

    /// Rebuild every standard read model from the log.
    pub async fn rebuild_read_models(&self) {
        let mut reports = 0;
        sp_projections::rebuild(&sp_projections::standard(), &self.db.database, |_, _| {
            reports += 1
        })
        .await
        .unwrap_or_else(|e| panic!("rebuild: {e}"));
        assert!(reports > 0, "the rebuild reports its progress");
    }

    /// Wait until every read model has applied the whole log.
    pub async fn caught_up(&self) {
        eventually("the read models catch up", || async {
            let (_, r) = self.readyz().await;
            let checks = r["checks"].as_object()?;
            let projections: Vec<&Value> = checks
                .iter()
                .filter(|(k, _)| k.starts_with("projection:"))
                .map(|(_, v)| v)
                .collect();
            // `behind` is measured against the head as /readyz reads it, so
            // this holds only once everything appended before the call is in.
            let all = !projections.is_empty()
                && projections
                    .iter()
                    .all(|v| v["ok"] == true && v["behind"].as_i64() == Some(0));
            all.then_some(())
        })
        .await;
    }

    pub async fn stop(mut self) {
        self.stop_serving().await;
    }

    /// Stop the platform, keeping its database (and this handle) to look at.
    pub async fn stop_serving(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// Up to a minute: a platform seeding a catalogue of 10,000 tests is not
/// ready before it is imported.
async fn wait_ready(http: &reqwest::Client, base: &str) {
    eventually_within(
        Duration::from_secs(60),
        "the platform gets ready",
        || async {
            let r = http.get(format!("{base}/readyz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
}

/// A second replica of a [`TestPlatform`] (see [`TestPlatform::replica`]).
#[derive(Debug)]
pub struct Replica {
    pub base: String,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Drop for TestPlatform {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Local VMs are process groups that outlive the platform: stop them.
        let vms = self.settings.local_vm_dir.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sp_managers::VmProvider;
                let provider =
                    sp_managers::local::LocalProvider::new(sp_managers::local::LocalConfig {
                        state_dir: vms,
                        command: vec![],
                        create_delay: Duration::ZERO,
                    });
                for vm in provider.list(&Default::default()).await.unwrap_or_default() {
                    let _ = provider.delete(&vm.name).await;
                }
            });
        })
        .join();
    }
}

/// Every row of every table of every standard read model, as JSON text
/// sorted per table (see [`TestPlatform::read_models`]).
pub async fn read_model_dump(db: &sp_eventstore::Database) -> Value {
    let mut models = serde_json::Map::new();
    for projection in sp_projections::standard() {
        for table in projection.tables() {
            let mut rows = table_rows(&db.pool, table).await;
            rows.sort();
            models.insert(format!("{}.{table}", projection.name()), json!(rows));
        }
    }
    Value::Object(models)
}

/// Each read model's checkpoint position.
pub async fn checkpoints(pool: &sp_eventstore::Pool) -> Vec<i64> {
    let sql = "SELECT position FROM projection_checkpoints";
    match pool {
        sp_eventstore::Pool::Postgres(pg) => sqlx::query_scalar(sql).fetch_all(pg).await,
        sp_eventstore::Pool::Sqlite { reader, .. } => {
            sqlx::query_scalar(sql).fetch_all(reader).await
        }
    }
    .unwrap_or_default()
}

/// A table's rows as JSON text, one string per row.
async fn table_rows(pool: &sp_eventstore::Pool, table: &str) -> Vec<String> {
    match pool {
        sp_eventstore::Pool::Postgres(pg) => {
            sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(pg)
                .await
                .unwrap_or_else(|e| panic!("dump {table}: {e}"))
        }
        sp_eventstore::Pool::Sqlite { reader, .. } => {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(reader)
                    .await
                    .unwrap_or_else(|e| panic!("columns of {table}: {e}"));
            assert!(!columns.is_empty(), "no table {table}");
            let pairs: Vec<String> = columns
                .iter()
                .map(|c| {
                    format!("'{c}', CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE \"{c}\" END")
                })
                .collect();
            sqlx::query_scalar(&format!(
                "SELECT json_object({}) FROM {table}",
                pairs.join(", ")
            ))
            .fetch_all(reader)
            .await
            .unwrap_or_else(|e| panic!("dump {table}: {e}"))
        }
    }
}

/// The value of one series in a `/metrics` scrape (`name{labels}` exactly as
/// rendered), if it is there.
pub fn metric(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Poll `check` until it gives a value; fail after ten seconds.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(10), what, check).await
}

/// [`eventually`], failing after `patience`.
pub async fn eventually_within<T, F, Fut>(patience: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A GraphQL WebSocket (`graphql-transport-ws`) to the platform at `base`,
/// initialised with `payload` (`{"Authorization": "Bearer …"}` for a token)
/// and acknowledged.
pub async fn graphql_socket(base: &str, payload: Value) -> GraphqlSocket {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    socket
        .send(socket_message(
            json!({ "type": "connection_init", "payload": payload }),
        ))
        .await
        .expect("init");
    let ack = socket.next().await.expect("ack").expect("message");
    assert!(ack.to_string().contains("connection_ack"), "{ack}");
    socket
}

pub type GraphqlSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON message for a [`graphql_socket`].
pub fn socket_message(v: Value) -> tokio_tungstenite::tungstenite::Message {
    tokio_tungstenite::tungstenite::Message::Text(v.to_string().into())
}
