//! A fake Compute Engine on 127.0.0.1 speaking the REST wire format the real
//! client uses (`/compute/v1/projects/{p}/zones/{z}/...`, JSON instances and
//! operations, Google's error bodies). It can succeed, fail with each class of
//! error, hang, or leave operations running for ever, and it records every
//! insert it receives.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How the fake answers inserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Succeed,
    /// The insert's operation ends DONE with this error code (as GCP reports
    /// capacity, quota and configuration errors).
    OperationError(&'static str),
    /// The insert is answered with this HTTP status and message.
    HttpError(u16, &'static str),
    /// The insert never answers.
    Hang,
    /// The insert's operation stays RUNNING for ever.
    NeverDone,
    /// The insert is accepted, then waiting for its operation never answers
    /// (a connection that stalls mid-call).
    WaitHangs,
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    /// (requestId, instance name) of every insert received.
    inserts: Vec<(String, String)>,
    instances: BTreeMap<String, Value>,
    operations: HashMap<String, Value>,
    by_request: HashMap<String, String>,
    next: u64,
    /// Deletes answered with this error instead (a missing permission, say).
    refused_deletes: Option<(u16, &'static str)>,
}

#[derive(Debug, Clone)]
pub struct FakeCompute {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

fn google_error(code: u16, message: &str, reason: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "errors": [{ "message": message, "domain": "global", "reason": reason }]
        }
    });
    (status, axum::Json(body)).into_response()
}

impl FakeCompute {
    pub async fn start(mode: Mode) -> FakeCompute {
        let inner = Arc::new(Mutex::new(Inner {
            mode,
            inserts: vec![],
            instances: BTreeMap::new(),
            operations: HashMap::new(),
            by_request: HashMap::new(),
            next: 1,
            refused_deletes: None,
        }));
        let app = Router::new()
            .route(
                "/compute/v1/projects/{project}/zones/{zone}/instances",
                post(insert).get(list),
            )
            .route(
                "/compute/v1/projects/{project}/zones/{zone}/instances/{name}",
                get(get_instance).delete(delete),
            )
            .route(
                "/compute/v1/projects/{project}/zones/{zone}/operations/{op}",
                get(operation),
            )
            .route(
                "/compute/v1/projects/{project}/zones/{zone}/operations/{op}/wait",
                post(operation),
            )
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCompute { url, inner }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Every insert received: (requestId, instance name).
    pub fn inserts(&self) -> Vec<(String, String)> {
        self.lock().inserts.clone()
    }

    pub fn instance_names(&self) -> Vec<String> {
        self.lock().instances.keys().cloned().collect()
    }

    pub fn instance(&self, name: &str) -> Option<Value> {
        self.lock().instances.get(name).cloned()
    }

    /// Put an instance there as if someone else made it.
    pub fn add_instance(&self, name: &str, labels: Value, status: &str) {
        self.lock().instances.insert(
            name.to_string(),
            json!({ "name": name, "labels": labels, "status": status }),
        );
    }

    /// Answer every delete with this HTTP error from now on.
    pub fn refuse_deletes(&self, code: u16, message: &'static str) {
        self.lock().refused_deletes = Some((code, message));
    }

    /// An instance deleted behind the platform's back (by a person).
    pub fn remove_instance(&self, name: &str) {
        self.lock().instances.remove(name);
    }

    /// Make an existing instance stop, as a preemption would.
    pub fn set_status(&self, name: &str, status: &str) {
        if let Some(i) = self.lock().instances.get_mut(name) {
            i["status"] = json!(status);
        }
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn new_operation(
    inner: &mut Inner,
    kind: &str,
    target: &str,
    status: &str,
    error: Option<&str>,
) -> Value {
    let name = format!("operation-{}", inner.next);
    inner.next += 1;
    let mut op = json!({
        "kind": "compute#operation",
        "id": inner.next.to_string(),
        "name": name,
        "operationType": kind,
        "targetLink": format!("https://www.googleapis.com/compute/v1/{target}"),
        "status": status,
        "progress": if status == "DONE" { 100 } else { 0 },
    });
    if let Some(code) = error {
        op["error"] = json!({ "errors": [{ "code": code, "message": format!("{code} (fake)") }] });
        let http = match code {
            "QUOTA_EXCEEDED" => 403,
            "ZONE_RESOURCE_POOL_EXHAUSTED" | "STOCKOUT" | "RESOURCE_NOT_READY" => 503,
            _ => 400,
        };
        op["httpErrorStatusCode"] = json!(http);
    }
    inner.operations.insert(name, op.clone());
    op
}

async fn insert(
    State(inner): Shared,
    Path((project, zone)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let request_id = query.get("requestId").cloned().unwrap_or_default();
    let mode = {
        let mut i = inner.lock().unwrap_or_else(|p| p.into_inner());
        i.inserts.push((request_id.clone(), name.clone()));
        i.mode.clone()
    };
    match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Mode::HttpError(code, message) => {
            let reason = if message.contains("Quota") {
                "quotaExceeded"
            } else {
                "invalid"
            };
            return google_error(code, message, reason);
        }
        _ => {}
    }
    let mut i = inner.lock().unwrap_or_else(|p| p.into_inner());
    // GCP answers a repeated requestId with the first insert's operation.
    if let Some(op) = i
        .by_request
        .get(&request_id)
        .and_then(|n| i.operations.get(n))
    {
        return axum::Json(op.clone()).into_response();
    }
    if let Some(refused) = invalid_metadata(&body) {
        return google_error(400, &refused, "invalid");
    }
    if i.instances.contains_key(&name) {
        return google_error(
            409,
            &format!("The resource '{name}' already exists"),
            "alreadyExists",
        );
    }
    let target = format!("projects/{project}/zones/{zone}/instances/{name}");
    let op = match &mode {
        Mode::OperationError(code) => new_operation(&mut i, "insert", &target, "DONE", Some(code)),
        Mode::NeverDone => new_operation(&mut i, "insert", &target, "RUNNING", None),
        _ => {
            let mut instance = body.clone();
            instance["status"] = json!("PROVISIONING");
            i.instances.insert(name.clone(), instance);
            new_operation(&mut i, "insert", &target, "RUNNING", None)
        }
    };
    let op_name = op["name"].as_str().unwrap_or_default().to_string();
    i.by_request.insert(request_id, op_name);
    axum::Json(op).into_response()
}

/// What Compute Engine refuses in an instance's metadata: a key outside
/// `[a-zA-Z0-9-_]{1,128}`, a key given twice, a value over 256 KiB, more
/// than 512 KiB in all.
fn invalid_metadata(body: &Value) -> Option<String> {
    let items = body["metadata"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for item in &items {
        let key = item["key"].as_str().unwrap_or_default();
        let value = item["value"].as_str().unwrap_or_default();
        let valid = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Some(format!(
                "Invalid value for field 'resource.metadata.items.key': '{key}'. Must be a match of regex '[a-zA-Z0-9-_]{{1,128}}'"
            ));
        }
        if !seen.insert(key.to_string()) {
            return Some(format!(
                "Invalid value for field 'resource.metadata': Duplicate metadata key '{key}'"
            ));
        }
        if value.len() > 256 * 1024 {
            return Some(format!(
                "Invalid value for field 'resource.metadata.items.value': the value of '{key}' is larger than 256 KB"
            ));
        }
        total += key.len() + value.len();
    }
    (total > 512 * 1024).then(|| {
        "Invalid value for field 'resource.metadata': metadata is larger than 512 KB".into()
    })
}

async fn operation(
    State(inner): Shared,
    Path((_, _, op)): Path<(String, String, String)>,
) -> Response {
    let mode = inner.lock().unwrap_or_else(|p| p.into_inner()).mode.clone();
    if mode == Mode::WaitHangs {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let never_done = mode == Mode::NeverDone;
    if never_done {
        // `wait` returns early by design; the operation is still running.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut i = inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(current) = i.operations.get(&op).cloned() else {
        return google_error(
            404,
            &format!("The resource 'operations/{op}' was not found"),
            "notFound",
        );
    };
    if never_done || current["status"] == "DONE" {
        return axum::Json(current).into_response();
    }
    let mut done = current;
    done["status"] = json!("DONE");
    done["progress"] = json!(100);
    if let Some(name) = done["targetLink"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .map(String::from)
        && let Some(instance) = i.instances.get_mut(&name)
        && done["operationType"] == "insert"
    {
        instance["status"] = json!("RUNNING");
    }
    i.operations.insert(op, done.clone());
    axum::Json(done).into_response()
}

async fn get_instance(
    State(inner): Shared,
    Path((_, _, name)): Path<(String, String, String)>,
) -> Response {
    let i = inner.lock().unwrap_or_else(|p| p.into_inner());
    match i.instances.get(&name) {
        Some(instance) => axum::Json(instance.clone()).into_response(),
        None => google_error(
            404,
            &format!("The resource 'instances/{name}' was not found"),
            "notFound",
        ),
    }
}

async fn delete(
    State(inner): Shared,
    Path((project, zone, name)): Path<(String, String, String)>,
) -> Response {
    let mut i = inner.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((code, message)) = i.refused_deletes {
        return google_error(code, message, "forbidden");
    }
    if i.instances.remove(&name).is_none() {
        return google_error(
            404,
            &format!("The resource 'instances/{name}' was not found"),
            "notFound",
        );
    }
    let target = format!("projects/{project}/zones/{zone}/instances/{name}");
    axum::Json(new_operation(&mut i, "delete", &target, "DONE", None)).into_response()
}

/// Filters of the form `labels.k = "v" AND labels.k2 = "v2"`.
fn matches(instance: &Value, filter: &str) -> bool {
    filter
        .split(" AND ")
        .filter(|c| !c.trim().is_empty())
        .all(|clause| {
            let Some((key, value)) = clause.split_once('=') else {
                return false;
            };
            let key = key.trim().trim_start_matches("labels.");
            let value = value.trim().trim_matches('"');
            instance["labels"][key] == value
        })
}

async fn list(State(inner): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let i = inner.lock().unwrap_or_else(|p| p.into_inner());
    let filter = query.get("filter").cloned().unwrap_or_default();
    let items: Vec<Value> = i
        .instances
        .values()
        .filter(|v| matches(v, &filter))
        .cloned()
        .collect();
    axum::Json(json!({ "kind": "compute#instanceList", "items": items })).into_response()
}
