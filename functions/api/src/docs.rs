//! `/docs`: Swagger UI over `GET /openapi.json`, from the swagger-ui bundle compiled into the
//! binary (`utoipa-swagger-ui`, feature `vendored`: nothing is fetched, at build or at run
//! time). Public, like the dashboard, and under the dashboard's CSP but for two narrow
//! exceptions (see [`CSP`]).

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use utoipa_swagger_ui::Config;

use crate::app::AppState;
use crate::error::error_response;

/// The pages `/docs` serves (public, outside the API's [`crate::app::ROUTES`], like
/// [`crate::dashboard::PAGES`]).
pub const PAGES: &[(&str, &str)] = &[("GET", "/docs"), ("GET", "/docs/{*file}")];

/// [`crate::dashboard::CSP`] with two exceptions, for swagger-ui 5.32.6 as `utoipa-swagger-ui`
/// vendors it: `img-src 'self' data:` (its CSS carries its icons as `data:` URLs), and the one
/// inline style it applies, allowed by its hash alone (`'unsafe-hashes'` lets a hash match a
/// style attribute; no other inline style is allowed). Scripts still come only from this origin
/// (swagger-ui has no inline script; its settings are the separate `swagger-initializer.js`).
/// A new swagger-ui with another inline style shows as a console error in
/// `tests/browser/docs.test.mjs`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; \
                   style-src 'self' 'unsafe-hashes' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; \
                   connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::from("/openapi.json")
            // No call to swagger's online validator.
            .validator_url("none")
            .try_it_out_enabled(true),
    )
});

pub fn routes() -> Router<AppState> {
    Router::new()
        // The page's links are relative (`./swagger-ui.css`): it must be served from within
        // `/docs/`. Not `/docs/` itself: the gateway's `/docs/{proxy+}` needs a file name.
        .route("/docs", get(|| async { Redirect::permanent("/docs/index.html") }))
        .route(
            "/docs/{*file}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}

/// One file of the bundle.
fn file(name: &str) -> Response {
    match utoipa_swagger_ui::serve(name, CONFIG.clone()) {
        Ok(Some(f)) => {
            let mut resp = (StatusCode::OK, f.bytes.into_owned()).into_response();
            let headers = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&f.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if f.gzpipped {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            resp
        }
        Ok(None) => error_response(StatusCode::NOT_FOUND, "no such file in /docs"),
        Err(e) => {
            tracing::error!(error = %e, file = name, "swagger-ui file could not be served");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> String {
        let resp = file(name);
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let f = utoipa_swagger_ui::serve(name, CONFIG.clone()).unwrap().unwrap();
        assert!(!f.gzpipped, "{name}");
        String::from_utf8(f.bytes.into_owned()).unwrap()
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_reads_our_document() {
        let index = text("index.html");
        // Every script and stylesheet is a file of the bundle, relative to /docs/.
        for asset in [
            "./swagger-ui.css",
            "index.css",
            "./swagger-ui-bundle.js",
            "./swagger-initializer.js",
        ] {
            assert!(index.contains(asset), "{asset}");
        }
        for line in index.lines() {
            if line.contains("<script") {
                assert!(line.contains(" src=\""), "no inline script: {line}");
            }
            assert!(!line.contains("<style"), "no inline style: {line}");
        }
        let init = text("swagger-initializer.js");
        assert!(init.contains("\"/openapi.json\""), "{init}");
        assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
        assert!(!init.contains("petstore"), "{init}");
        // No asset (script, stylesheet, image, font) is fetched from another origin.
        for name in ["index.html", "swagger-initializer.js", "index.css", "swagger-ui.css"] {
            let body = text(name);
            for bad in [
                "src=\"http",
                "href=\"http",
                "url(http",
                "url(\"http",
                "url('http",
                "@import",
            ] {
                assert!(!body.contains(bad), "{name} loads {bad}...");
            }
        }
        assert_eq!(file("nope.js").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_csp_is_the_dashboards_but_for_data_images_and_one_hashed_style() {
        assert_eq!(
            CSP.replace("img-src 'self' data:", "img-src 'self'").replace(
                " 'unsafe-hashes' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='",
                ""
            ),
            crate::dashboard::CSP
        );
    }
}
