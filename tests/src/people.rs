//! Signing in to a test platform through the fake GitHub's OAuth, as a
//! browser does it: cookies carried by hand, redirects followed one by one,
//! so a test sees (and can tamper with) every step.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::TestPlatform;
use crate::fake_github::FakeGithub;
use crate::fake_oauth::{CLIENT_ID, CLIENT_SECRET};

/// Settings that sign people in at `github` (its OAuth pages and API).
pub fn with_sign_in(
    mut s: sp_api::config::Settings,
    github: &FakeGithub,
    admins: &[&str],
) -> sp_api::config::Settings {
    s.github_oauth_client_id = Some(CLIENT_ID.into());
    s.github_oauth_client_secret = Some(CLIENT_SECRET.into());
    s.github_oauth_url = github.url.clone();
    s.github_api_url = github.url.clone();
    s.admins = admins.iter().map(|a| a.to_string()).collect();
    s
}

/// A client that follows no redirect and keeps no cookie.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `name=value` of a cookie a response sets, and the whole header.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or_default().to_string();
            (pair, v.to_string())
        })
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A sign-in started: the platform's cookie for it, and where GitHub
/// sent the browser back (the callback URL with `code` and `state`).
#[derive(Debug)]
pub struct Started {
    pub login_cookie: String,
    pub callback: String,
}

/// `GET /auth/login`, then GitHub's authorize page (which approves for
/// whoever the fake GitHub has signed in).
pub async fn start_sign_in(p: &TestPlatform) -> Started {
    let client = browser();
    let response = client
        .get(format!("{}/auth/login?next=/runs", p.base))
        .send()
        .await
        .expect("GET /auth/login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (login_cookie, _) = set_cookie(&response, "sp_login").expect("the sign-in's cookie");
    let authorize = location(&response);
    let response = client.get(&authorize).send().await.expect("GitHub's page");
    assert!(response.status().is_redirection(), "{}", response.status());
    Started {
        login_cookie,
        callback: location(&response),
    }
}

/// A person signed in: their session cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// GitHub sends the browser back to `callback`: the response.
pub async fn come_back(callback: &str, login_cookie: &str) -> reqwest::Response {
    browser()
        .get(callback)
        .header(COOKIE, login_cookie)
        .send()
        .await
        .expect("the callback")
}

/// Sign in as `login`: the whole flow.
pub async fn sign_in(p: &TestPlatform, github: &FakeGithub, login: &str, id: i64) -> Session {
    github.oauth.sign_in(login, id);
    let started = start_sign_in(p).await;
    let response = come_back(&started.callback, &started.login_cookie).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    let (cookie, _) = set_cookie(&response, "sp_session").expect("a session cookie");
    let me = me(p, Some(&cookie)).await;
    Session {
        cookie,
        csrf: me["csrfToken"].as_str().expect("a CSRF token").to_string(),
    }
}

/// `GET /auth/me` with a session cookie, or none.
pub async fn me(p: &TestPlatform, cookie: Option<&str>) -> Value {
    let mut request = browser().get(format!("{}/auth/me", p.base));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request
        .send()
        .await
        .expect("GET /auth/me")
        .json()
        .await
        .expect("JSON")
}

/// A GraphQL request made with a session cookie and, if given, a CSRF
/// token: the HTTP status and the answer.
pub async fn graphql_as(
    p: &TestPlatform,
    cookie: &str,
    csrf: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut request = browser()
        .post(format!("{}/graphql", p.base))
        .header(COOKIE, cookie)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    let response = request.send().await.expect("graphql");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Session {
    /// As an admin, give `login` a role; it must change.
    pub async fn set_role(&self, p: &TestPlatform, login: &str, role: &str) {
        let answer = self
            .graphql(
                p,
                "mutation($l: String!, $r: String!) { setRole(login: $l, role: $r) }",
                json!({ "l": login, "r": role }),
            )
            .await;
        assert_eq!(answer["data"]["setRole"], true, "{answer}");
    }

    /// A GraphQL request as this person, from the dashboard (with the CSRF
    /// token).
    pub async fn graphql(&self, p: &TestPlatform, query: &str, variables: Value) -> Value {
        let (status, answer) =
            graphql_as(p, &self.cookie, Some(&self.csrf), query, variables).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }
}
