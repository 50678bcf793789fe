//! Signing in with GitHub, and who a request comes from.
//!
//! `GET /auth/login` sends the browser to GitHub with a fresh `state` and
//! PKCE challenge, both kept in a short-lived cookie of this browser;
//! `GET /auth/callback` takes the code only with that state, exchanges it
//! here, and starts a session (a new id each time, in an `HttpOnly`,
//! `SameSite=Lax` cookie, `Secure` behind https). `GET /auth/me` says who is
//! signed in and gives the CSRF token that the session's mutations carry in
//! `X-CSRF-Token`; `POST /auth/logout` ends the session.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde_json::json;

use super::{ApiError, AppState};
use crate::auth::{self, Caller};
use crate::people::Person;

const SESSION_COOKIE: &str = "sp_session";
/// The sign-in under way: `state.verifier.next`.
const LOGIN_COOKIE: &str = "sp_login";
/// A sign-in must come back from GitHub within this.
const LOGIN_SECONDS: i64 = 600;

/// Whether a request's session must prove it comes from the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Csrf {
    /// It changes something (or may: every GraphQL POST).
    Required,
    /// It only reads (a GET).
    NotNeeded,
}

/// Who a request comes from: the bearer token it names, else the session
/// its cookie names, else anonymous. A token or session that is unknown,
/// revoked or expired is refused rather than taken as anonymous.
pub(super) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Csrf,
) -> Result<Caller, ApiError> {
    if let Some(value) = headers.get("authorization") {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthenticated("Authorization must be `Bearer <token>`"))?;
        return auth::resolve(&state.db.pool, secret.trim())
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::unauthenticated("unknown or revoked token"));
    }
    let Some(person) = person(state, headers).await? else {
        return Ok(Caller::anonymous());
    };
    if csrf == Csrf::Required {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if sent != Some(person.csrf.as_str()) {
            return Err(ApiError::forbidden(
                "a request made with a session cookie must carry the session's X-CSRF-Token header (GET /auth/me gives it)",
            ));
        }
    }
    Ok(person.caller())
}

/// The person a request's session cookie names; an error for a session
/// that has expired or ended.
async fn person(state: &AppState, headers: &HeaderMap) -> Result<Option<Person>, ApiError> {
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    match state
        .people
        .session(cookie.value())
        .await
        .map_err(ApiError::from)?
    {
        Some(person) => Ok(Some(person)),
        None => Err(ApiError::unauthenticated(
            "your session has expired or ended: sign in again at /auth/login",
        )),
    }
}

fn cookie(
    name: &'static str,
    value: String,
    seconds: i64,
    secure: bool,
    path: &'static str,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .path(path)
        .max_age(cookie::time::Duration::seconds(seconds))
        .build()
}

/// Where to go after signing in: a path of this site, nothing else (an
/// absolute or protocol-relative URL would make the platform an open
/// redirect).
fn local_path(next: Option<&str>) -> String {
    match next {
        // Printable ASCII only: a browser drops a tab or newline from a URL,
        // which would turn `/\t/evil.example` into `//evil.example`.
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /auth/login?next=/path`
pub async fn login(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Result<Response, ApiError> {
    let oauth = state.oauth.as_ref().ok_or_else(not_set_up)?;
    let start = oauth.start();
    let next = local_path(query.next.as_deref());
    let value = format!("{}.{}.{}", start.state, start.verifier, next);
    let jar = jar.add(cookie(
        LOGIN_COOKIE,
        value,
        LOGIN_SECONDS,
        state.secure_cookies,
        "/auth",
    ));
    Ok((jar, Redirect::to(&start.url)).into_response())
}

fn not_set_up() -> ApiError {
    ApiError::not_found(
        "signing in with GitHub is not set up here: set github_oauth_client_id and github_oauth_client_secret",
    )
}

#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback?code=…&state=…`, where GitHub sends the browser back.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let oauth = state.oauth.as_ref().ok_or_else(not_set_up)?;
    if let Some(error) = query.error {
        return Err(ApiError::unauthenticated(format!(
            "GitHub did not sign you in: {} ({error})",
            query.error_description.unwrap_or_default()
        )));
    }
    let started = jar.get(LOGIN_COOKIE).map(|c| c.value().to_string());
    let Some((expected, verifier, next)) = started.as_deref().and_then(|v| {
        let mut parts = v.splitn(3, '.');
        Some((parts.next()?, parts.next()?, parts.next()?))
    }) else {
        return Err(ApiError::unauthenticated(
            "no sign-in was started in this browser, or it took over 10 minutes: start again at /auth/login",
        ));
    };
    if query.state.as_deref() != Some(expected) {
        tracing::warn!("a sign-in came back with a state this browser did not start");
        return Err(ApiError::unauthenticated(
            "the sign-in's state does not match the one this browser started: start again at /auth/login",
        ));
    }
    let code = query
        .code
        .ok_or_else(|| ApiError::invalid("GitHub sent no code"))?;
    let user = oauth.finish(&code, verifier).await.map_err(|e| {
        tracing::warn!(error = %e, "signing in with GitHub failed");
        match e {
            crate::github::oauth::OAuthError::Refused(_) => {
                ApiError::unauthenticated(e.to_string())
            }
            _ => ApiError::unavailable(e.to_string()),
        }
    })?;
    // A new session id at every sign-in; the one this browser had ends.
    if let Some(old) = jar.get(SESSION_COOKIE) {
        state
            .people
            .sign_out(old.value())
            .await
            .map_err(ApiError::from)?;
    }
    let (id, _) = state
        .people
        .sign_in(&user.login, user.id)
        .await
        .map_err(ApiError::from)?;
    let seconds = state.people.session_seconds();
    let next = next.to_string();
    let jar = jar
        .remove(Cookie::build(LOGIN_COOKIE).path("/auth").build())
        .add(cookie(
            SESSION_COOKIE,
            id,
            seconds,
            state.secure_cookies,
            "/",
        ));
    Ok((jar, Redirect::to(&next)).into_response())
}

/// `GET /auth/me`: who is signed in, their role and CSRF token.
pub async fn me(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let available = state.oauth.is_some();
    // An ended session reads as signed out; a database that cannot say is
    // an error, not a sign-out.
    let found = match person(&state, &headers).await {
        Ok(found) => found,
        Err(e) if e.0.kind == sp_commands::ErrorKind::Unauthenticated => None,
        Err(e) => return Err(e),
    };
    let Some(p) = found else {
        // An ended session's cookie goes: it would make every later request
        // of this browser fail as "expired" instead of reading anonymously.
        let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/").build());
        let body = json!({ "login": null, "role": null, "signInAvailable": available });
        return Ok((jar, Json(body)).into_response());
    };
    Ok(Json(json!({
        "login": p.login,
        "role": p.role.as_str(),
        "csrfToken": p.csrf,
        "signInAvailable": available,
    }))
    .into_response())
}

/// `POST /auth/logout`, with the session's `X-CSRF-Token`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers, Csrf::Required).await?;
    let Some(session) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Err(ApiError::invalid(format!(
            "{} is not signed in with a session",
            caller.actor
        )));
    };
    state
        .people
        .sign_out(&session)
        .await
        .map_err(ApiError::from)?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/").build());
    Ok((jar, Json(json!({ "signedOut": true }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_of_this_site_is_gone_to_after_signing_in() {
        assert_eq!(local_path(Some("/runs/1?x=2")), "/runs/1?x=2");
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "runs",
        ] {
            assert_eq!(local_path(Some(elsewhere)), "/", "{elsewhere}");
        }
        assert_eq!(local_path(None), "/");
    }
}
