//! Signing in with GitHub: the authorization-code flow of a GitHub OAuth App
//! with PKCE (`oauth2`), the code exchanged here on the server, then
//! `GET /user` with the token to learn who signed in. The token is used for
//! nothing else and is not kept.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    TokenResponse, TokenUrl,
};

/// No call to GitHub may take longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The OAuth App and where GitHub is.
#[derive(Debug, Clone)]
pub struct GithubOAuth {
    client: Client,
    api_url: String,
    http: reqwest::Client,
    /// The platform's own GitHub token, if any, for what it asks GitHub
    /// about people's repositories (people's tokens are not kept).
    token: Option<String>,
}

/// Where to send the browser, and what its cookie must keep until it comes
/// back: the state the callback must echo and the PKCE verifier.
#[derive(Debug)]
pub struct Start {
    pub url: String,
    pub state: String,
    pub verifier: String,
}

/// Who GitHub says signed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct GithubUser {
    pub login: String,
    pub id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid OAuth setting: {0}")]
    Setting(String),
    /// A name that cannot be a repository.
    #[error("{0}")]
    Invalid(String),
    /// GitHub refused the code: its error and description.
    #[error("GitHub refused the sign-in: {0}")]
    Refused(String),
    #[error("GitHub could not be asked who signed in: {0}")]
    Unreachable(String),
}

impl GithubOAuth {
    /// `oauth_url` is github.com (or a GitHub Enterprise host), `api_url`
    /// its API, `callback` this platform's `/auth/callback` as registered
    /// with the OAuth App.
    pub fn new(
        client_id: &str,
        client_secret: &str,
        oauth_url: &str,
        api_url: &str,
        callback: &str,
        token: Option<String>,
    ) -> Result<GithubOAuth, OAuthError> {
        let oauth_url = oauth_url.trim_end_matches('/');
        let setting =
            |what: &str, e: oauth2::url::ParseError| OAuthError::Setting(format!("{what}: {e}"));
        let client = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.to_string()))
            .set_auth_uri(
                AuthUrl::new(format!("{oauth_url}/login/oauth/authorize"))
                    .map_err(|e| setting("github_oauth_url", e))?,
            )
            .set_token_uri(
                TokenUrl::new(format!("{oauth_url}/login/oauth/access_token"))
                    .map_err(|e| setting("github_oauth_url", e))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(callback.to_string()).map_err(|e| setting("public_url", e))?,
            )
            // GitHub takes the client's credentials in the form, as its
            // documentation shows.
            .set_auth_type(AuthType::RequestBody);
        // Redirects are not followed: a token endpoint that redirects is
        // not GitHub's (and following could leak the code elsewhere).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .user_agent("sample-platform")
            .build()
            .map_err(|e| OAuthError::Setting(e.to_string()))?;
        Ok(GithubOAuth {
            client,
            api_url: api_url.trim_end_matches('/').to_string(),
            http,
            token,
        })
    }

    /// A new sign-in: GitHub's authorize URL with a fresh state and PKCE
    /// challenge. No scope is asked: signing in needs only who you are.
    pub fn start(&self) -> Start {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .url();
        Start {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
        }
    }

    /// Exchange the callback's code (with the verifier of its start) and
    /// ask GitHub whose it was.
    pub async fn finish(&self, code: &str, verifier: &str) -> Result<GithubUser, OAuthError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(refusal)?;
        let response = self
            .http
            .get(format!("{}/user", self.api_url))
            .bearer_auth(token.access_token().secret())
            .header("accept", "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(OAuthError::Unreachable(format!(
                "GET /user answered {status}: {body}"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OAuthError::Unreachable(format!("GET /user: {e}")))
    }
}

impl GithubOAuth {
    /// What GitHub says of `owner/name`; `None` when it has no such
    /// repository (or does not show it).
    pub async fn repository(
        &self,
        full_name: &str,
    ) -> Result<Option<sp_domain::custom::Repository>, OAuthError> {
        #[derive(serde::Deserialize)]
        struct Owner {
            login: String,
        }
        #[derive(serde::Deserialize)]
        struct Parent {
            full_name: String,
        }
        #[derive(serde::Deserialize)]
        struct Repo {
            full_name: String,
            owner: Owner,
            parent: Option<Parent>,
        }
        let valid = full_name.split_once('/').is_some_and(|(o, n)| {
            let part = |p: &str| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            part(o) && part(n)
        });
        if !valid {
            return Err(OAuthError::Invalid(format!(
                "{full_name:?} is not a repository: write owner/name"
            )));
        }
        let mut request = self
            .http
            .get(format!("{}/repos/{full_name}", self.api_url))
            .header("accept", "application/vnd.github+json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable(e.to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(OAuthError::Unreachable(format!(
                "GET /repos/{full_name} answered {status}: {body}"
            )));
        }
        let repo: Repo = response
            .json()
            .await
            .map_err(|e| OAuthError::Unreachable(format!("GET /repos/{full_name}: {e}")))?;
        Ok(Some(sp_domain::custom::Repository {
            full_name: repo.full_name,
            owner: repo.owner.login,
            parent: repo.parent.map(|p| p.full_name),
        }))
    }
}

/// GitHub answers a refused exchange with 200 and an `error` field, which
/// `oauth2` reads as a token response it cannot parse: the body says why.
fn refusal<E: std::error::Error + 'static>(
    error: RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> OAuthError {
    #[derive(serde::Deserialize)]
    struct GithubError {
        error: String,
        error_description: Option<String>,
    }
    match error {
        RequestTokenError::ServerResponse(r) => OAuthError::Refused(r.to_string()),
        RequestTokenError::Parse(_, body) => match serde_json::from_slice::<GithubError>(&body) {
            Ok(e) => OAuthError::Refused(match e.error_description {
                Some(d) => format!("{} ({})", d, e.error),
                None => e.error,
            }),
            Err(_) => OAuthError::Unreachable(format!(
                "the token endpoint answered something else: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
        },
        RequestTokenError::Request(e) => OAuthError::Unreachable(e.to_string()),
        RequestTokenError::Other(e) => OAuthError::Unreachable(e),
    }
}
