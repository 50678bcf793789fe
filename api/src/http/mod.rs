//! The HTTP surface. `router` builds the whole app without a socket, so tests
//! can drive it in process; `serve` runs it on a listener until shutdown.

mod body;
mod dashboard;
mod error;
mod files;
mod graphiql;
mod graphql;
mod health;
mod login;
mod runner;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use sp_commands::Intake;
use sp_eventstore::Database;
use sp_projections::ProjectionStatus;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, public_message};
pub use runner::RunnerSettings;
use webhook::MAX_DELIVERY_BYTES;

use crate::graphql::ApiSchema;

/// A GraphQL request, uploads included: async-graphql holds an upload in
/// memory, so big samples go to the streamed `POST /api/samples` instead.
pub const MAX_GRAPHQL_BYTES: usize = 32 * 1024 * 1024;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub intake: Intake,
    pub webhook_secret: Option<String>,
    pub schema: ApiSchema,
    /// Each read model's progress, for `/readyz`.
    pub projections: Vec<(&'static str, watch::Receiver<ProjectionStatus>)>,
    /// The process managers' role and problems, for `/readyz`.
    pub managers: sp_managers::Health,
    pub runs: sp_commands::Handler<sp_domain::RunState>,
    pub runner: RunnerSettings,
    pub catalogues: sp_commands::Catalogues,
    /// Samples and outputs, by SHA-256.
    pub files: sp_files::Files,
    pub max_sample_bytes: u64,
    pub anonymous_read: bool,
    /// What `/metrics` shows: this process's counts, and per platform the
    /// state of the queue and of the VMs of `vm_provider`.
    pub metrics: sp_managers::Metrics,
    pub platforms: Vec<String>,
    pub vm_provider: String,
    /// Sessions and roles of people signed in with GitHub.
    pub people: crate::people::People,
    /// Signing in with GitHub, when configured.
    pub oauth: Option<crate::github::oauth::GithubOAuth>,
    /// Cookies only over https (the public URL is https).
    pub secure_cookies: bool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

/// No request may hold a connection longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: Arc<AppState>) -> Router {
    // WebSocket subscriptions and uploads of large files live longer than
    // any request: no timeout layer. Uploads enforce their own size limits
    // while streaming.
    let long = Router::new()
        .route("/graphql/ws", get(graphql::subscriptions))
        .route("/api/samples", post(files::add_sample))
        .route("/api/outputs", post(files::add_output))
        .route(
            "/runner/v1/runs/{run}/outputs/{sha256}",
            axum::routing::put(runner::upload_output),
        )
        .route(
            "/runner/v1/runs/{run}/logs/{name}",
            axum::routing::put(runner::upload_log),
        )
        .layer(DefaultBodyLimit::disable());
    let requests = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/webhooks/github",
            post(webhook::receive).layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES)),
        )
        .route(
            "/graphql",
            get(graphiql::page)
                .post(graphql::execute)
                .layer(DefaultBodyLimit::max(MAX_GRAPHQL_BYTES)),
        )
        .route("/graphiql/{name}", get(graphiql::asset))
        .route("/auth/login", get(login::login))
        .route("/auth/callback", get(login::callback))
        .route("/auth/me", get(login::me))
        .route("/auth/logout", post(login::logout))
        .route("/files/samples/{sha256}", get(files::sample))
        .route("/files/outputs/{sha256}", get(files::output))
        .route("/files/logs/{run}/{attempt}/{name}", get(files::log))
        .route("/runner/v1/runs/{run}/job", get(runner::job))
        .route("/runner/v1/runs/{run}/reports", post(runner::report))
        .route("/runner/v1/runs/{run}/artifact", get(runner::artifact))
        .route(
            "/runner/v1/runs/{run}/samples/{sha256}",
            get(runner::sample),
        )
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    requests
        .merge(long)
        .merge(dashboard::routes())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until `shutdown` completes, then finish the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
