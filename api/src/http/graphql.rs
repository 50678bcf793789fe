//! GraphQL over HTTP (POST) and subscriptions over WebSocket.

use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::login::{Csrf, caller};
use super::{ApiError, AppState};
use crate::auth::{self, Caller};

pub async fn execute(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Result<GraphQLResponse, ApiError> {
    let caller = caller(&state, &headers, Csrf::Required).await?;
    let request = request.into_inner();
    // Without anonymous reading there is nothing an anonymous caller may
    // ask, the schema included: one clear refusal instead of a null schema.
    if !state.anonymous_read && caller.is_anonymous() {
        return Ok(refusal(
            "UNAUTHENTICATED",
            "reading needs a token (Authorization: Bearer …)".into(),
        ));
    }
    if let Some(problem) = nul_in(&request) {
        return Ok(refusal("INVALID_INPUT", problem));
    }
    Ok(state.schema.execute(request.data(caller)).await.into())
}

/// A request refused before it runs, as GraphQL answers: an error with a code.
fn refusal(code: &'static str, message: String) -> GraphQLResponse {
    let mut error = async_graphql::ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    async_graphql::Response::from_errors(vec![error]).into()
}

/// A NUL character in the query or a variable, named: no store can keep one,
/// so it is refused before any resolver sees it.
fn nul_in(request: &async_graphql::Request) -> Option<String> {
    if request.query.contains('\0') {
        return Some("the query contains a NUL character".into());
    }
    let variables = serde_json::to_value(&request.variables).ok()?;
    sp_eventstore::nul_path(&variables)
        .map(|path| format!("variable {path} contains a NUL character"))
}

/// Subscriptions; a token, if any, comes in the connection_init payload as
/// `{"Authorization": "Bearer …"}` (or `{"token": "…"}`), else the session
/// cookie of the upgrade request counts; either only reads.
pub async fn subscriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    // Only the cookie: a header the payload does not name is not taken.
    let mut upgrade_headers = HeaderMap::new();
    if let Some(cookie) = headers.get("cookie") {
        upgrade_headers.insert("cookie", cookie.clone());
    }
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let mut headers = upgrade_headers;
                    let bearer = payload
                        .get("Authorization")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .or_else(|| {
                            payload
                                .get("token")
                                .and_then(|v| v.as_str())
                                .map(|t| format!("Bearer {t}"))
                        });
                    if let Some(bearer) = bearer {
                        let value = HeaderValue::from_str(&bearer).map_err(|_| {
                            async_graphql::Error::new("the token is not a header value")
                        })?;
                        headers.insert("authorization", value);
                    }
                    let caller = caller(&state, &headers, Csrf::NotNeeded)
                        .await
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    // The token is checked once, when the connection opens,
                    // and a connection can outlive its revocation: over a
                    // WebSocket a token only reads. Mutations go over HTTP,
                    // where each request is checked.
                    let reader = Caller {
                        scopes: if caller.is_anonymous() {
                            vec![]
                        } else {
                            vec![auth::Scope::Read]
                        },
                        ..caller
                    };
                    let mut data = Data::default();
                    data.insert(reader);
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}
