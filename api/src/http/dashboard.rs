//! The dashboard: one page shell and its script and stylesheet, compiled
//! into the binary. The pages read everything through the GraphQL API.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

const INDEX: &str = include_str!("../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/style.css");

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// Every page answers with the shell; the script picks the page by path.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/runs/{id}", get(index))
        .route("/tests/{id}", get(index))
        .route("/queue", get(index))
        .route("/catalogue", get(index))
        .route("/audit", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/style.css", get(style))
}
