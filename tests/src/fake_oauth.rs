//! GitHub's OAuth, faked as GitHub speaks it: the authorize page (here it
//! approves at once for the person the test signed in to "GitHub"), the code
//! exchange at `/login/oauth/access_token` (client id and secret in the
//! form body, a code used once and within ten minutes, the redirect URI it
//! was issued for, PKCE's S256 verifier; GitHub answers its errors with
//! 200 and an `error` field), and `GET /user` for the token it minted. The
//! fake GitHub serves these beside its REST endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The OAuth App the fake knows.
pub const CLIENT_ID: &str = "Iv1.fakeclient0001";
pub const CLIENT_SECRET: &str = "fake-oauth-client-secret";

/// A person on the fake GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub login: String,
    pub id: i64,
}

#[derive(Debug)]
struct Code {
    user: User,
    redirect_uri: String,
    challenge: Option<String>,
    issued: Instant,
    used: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Who is signed in to GitHub in "the browser": the authorize page
    /// approves for them.
    signed_in: Option<User>,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, User>,
    /// Every exchange answered, `error` or `access_token`.
    exchanges: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeOAuth {
    inner: Arc<Mutex<Inner>>,
}

impl FakeOAuth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The person the authorize page approves for from now on.
    pub fn sign_in(&self, login: &str, id: i64) {
        self.lock().signed_in = Some(User {
            login: login.into(),
            id,
        });
    }

    /// What each code exchange was answered: the `error` or `access_token`.
    pub fn exchanges(&self) -> Vec<String> {
        self.lock().exchanges.clone()
    }

    pub(crate) fn routes(&self) -> Router {
        Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(exchange))
            .route("/user", get(user))
            .with_state(self.clone())
    }
}

#[derive(Debug, serde::Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn random() -> String {
    format!("{}", uuid::Uuid::new_v4().simple())
}

async fn authorize(State(fake): State<FakeOAuth>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id.as_deref() != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let Some(redirect_uri) = q.redirect_uri else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required here").into_response();
    };
    if q.code_challenge.is_some() && q.code_challenge_method.as_deref() != Some("S256") {
        return (
            StatusCode::BAD_REQUEST,
            "code_challenge_method must be S256",
        )
            .into_response();
    }
    let mut i = fake.lock();
    let Some(user) = i.signed_in.clone() else {
        return (StatusCode::OK, "<h1>Sign in to GitHub</h1>").into_response();
    };
    let code = random()[..20].to_string();
    i.codes.insert(
        code.clone(),
        Code {
            user,
            redirect_uri: redirect_uri.clone(),
            challenge: q.code_challenge,
            issued: Instant::now(),
            used: false,
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = q.state.map(|s| format!("&state={s}")).unwrap_or_default();
    Redirect::to(&format!("{redirect_uri}{sep}code={code}{state}")).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct ExchangeForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// GitHub's error answer to a code exchange: 200, with the error in the body.
fn refused(fake: &FakeOAuth, error: &str, description: &str) -> Response {
    fake.lock().exchanges.push(error.to_string());
    axum::Json(json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{}", error.replace('_', "-")),
    }))
    .into_response()
}

async fn exchange(
    State(fake): State<FakeOAuth>,
    headers: HeaderMap,
    Form(form): Form<ExchangeForm>,
) -> Response {
    if form.client_id.as_deref() != Some(CLIENT_ID)
        || form.client_secret.as_deref() != Some(CLIENT_SECRET)
    {
        return refused(
            &fake,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let code = form.code.unwrap_or_default();
    let problem = {
        let mut i = fake.lock();
        match i.codes.get_mut(&code) {
            None => Some((
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            )),
            Some(c) if c.used || c.issued.elapsed() > Duration::from_secs(600) => Some((
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            )),
            Some(c)
                if form
                    .redirect_uri
                    .as_deref()
                    .is_some_and(|r| r != c.redirect_uri) =>
            {
                Some((
                    "redirect_uri_mismatch",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                ))
            }
            Some(c) => {
                // The platform always sends a PKCE challenge: an exchange
                // without one is as wrong as one that does not match it.
                let verified = match (&c.challenge, &form.code_verifier) {
                    (None, _) => false,
                    (Some(challenge), Some(verifier)) => {
                        let digest = Sha256::digest(verifier.as_bytes());
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
                            == *challenge
                    }
                    (Some(_), None) => false,
                };
                // A code is spent by any attempt to use it, as GitHub's are.
                c.used = true;
                (!verified).then_some((
                    "bad_verification_code",
                    "The code_verifier does not match the code_challenge (or none was sent).",
                ))
            }
        }
    };
    if let Some((error, description)) = problem {
        return refused(&fake, error, description);
    }
    let token = format!("gho_{}", random());
    let mut i = fake.lock();
    let user = i.codes[&code].user.clone();
    i.tokens.insert(token.clone(), user);
    i.exchanges.push("access_token".into());
    let wants_json = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        axum::Json(json!({ "access_token": token, "token_type": "bearer", "scope": "" }))
            .into_response()
    } else {
        format!("access_token={token}&scope=&token_type=bearer").into_response()
    }
}

async fn user(State(fake): State<FakeOAuth>, headers: HeaderMap) -> Response {
    let token = crate::fake_github::bearer(&headers);
    let found = token.and_then(|t| fake.lock().tokens.get(t).cloned());
    match found {
        Some(u) => axum::Json(json!({
            "login": u.login,
            "id": u.id,
            "type": "User",
            "html_url": format!("https://github.com/{}", u.login),
        }))
        .into_response(),
        None => crate::fake_github::github_error(401, "Bad credentials"),
    }
}
