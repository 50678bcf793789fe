//! GraphiQL at `GET /graphql`, with its scripts and stylesheet compiled into
//! the binary and served under `/graphiql/`. The page must work offline (no
//! CDN within reach), so nothing it loads comes from anywhere but this
//! server. The files are upstream's UMD builds, unmodified: see
//! `assets/graphiql/README.md` for their versions and how to refresh them.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The IDE: queries and mutations go to `POST /graphql`, subscriptions to
/// `/graphql/ws` over WebSocket (`ws:` or `wss:` as the page was served).
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="origin">
    <title>GraphiQL IDE</title>
    <link rel="icon" href="data:,">
    <style>
      body {
        height: 100%;
        margin: 0;
        width: 100%;
        overflow: hidden;
      }

      #graphiql {
        height: 100vh;
      }
    </style>
    <script src="/graphiql/react.production.min.js"></script>
    <script src="/graphiql/react-dom.production.min.js"></script>
    <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  </head>

  <body>
    <div id="graphiql">Loading…</div>
    <script src="/graphiql/graphiql.min.js"></script>
    <script>
      (function () {
        const url = new URL('/graphql', window.location.origin);
        const subscriptionUrl = new URL('/graphql/ws', window.location.origin);
        subscriptionUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        const fetcher = GraphiQL.createFetcher({
          url: url.toString(),
          subscriptionUrl: subscriptionUrl.toString(),
          fetch: (input, init = {}) =>
            window.fetch(input, { ...init, credentials: 'same-origin' }),
        });
        ReactDOM.createRoot(document.getElementById('graphiql')).render(
          React.createElement(GraphiQL, {
            fetcher,
            defaultEditorToolsVisibility: true,
          }),
        );
      })();
    </script>
  </body>
</html>
"#;

const JAVASCRIPT: &str = "application/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files `PAGE` loads, by the name under `/graphiql/`.
fn file(name: &str) -> Option<(&'static [u8], &'static str)> {
    Some(match name {
        "react.production.min.js" => (
            include_bytes!("../../assets/graphiql/react.production.min.js").as_slice(),
            JAVASCRIPT,
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../../assets/graphiql/react-dom.production.min.js").as_slice(),
            JAVASCRIPT,
        ),
        "graphiql.min.js" => (
            include_bytes!("../../assets/graphiql/graphiql.min.js").as_slice(),
            JAVASCRIPT,
        ),
        "graphiql.min.css" => (
            include_bytes!("../../assets/graphiql/graphiql.min.css").as_slice(),
            CSS,
        ),
        _ => return None,
    })
}

/// `GET /graphql`: the GraphiQL page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /graphiql/{name}`: one of the page's scripts or its stylesheet,
/// cacheable for a day; any other name is not found.
pub async fn asset(Path(name): Path<String>) -> Response {
    let Some((bytes, content_type)) = file(&name) else {
        return (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_what_is_served_here() {
        for name in [
            "react.production.min.js",
            "react-dom.production.min.js",
            "graphiql.min.css",
            "graphiql.min.js",
        ] {
            assert!(PAGE.contains(&format!("\"/graphiql/{name}\"")), "{name}");
            assert!(
                file(name).is_some_and(|(bytes, _)| !bytes.is_empty()),
                "{name}"
            );
        }
        assert!(!PAGE.contains("https://"));
        assert!(!PAGE.contains("unpkg"));
    }

    #[tokio::test]
    async fn assets_have_their_type_and_anything_else_is_not_found() {
        let response = asset(Path("graphiql.min.js".to_owned())).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], JAVASCRIPT);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=86400"
        );
        let response = asset(Path("graphiql.min.css".to_owned())).await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], CSS);
        for name in [
            "",
            "..",
            "../Cargo.toml",
            "graphiql.min.js.map",
            "LICENSE-react",
            "README.md",
        ] {
            let response = asset(Path(name.to_owned())).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name:?}");
        }
    }
}
