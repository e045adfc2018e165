//! The routes, and the one place that decides which scope each needs.
//!
//! Why one policy function instead of a scope per handler: a route added
//! later cannot be left open by forgetting an annotation. Reading (`GET`)
//! needs `read`; changing workflows or templates needs `admin`; every other
//! change (start, abort, rerun, tags) needs `run`. Only `/health` and the
//! OpenAPI document are open.

mod artifacts;
mod definitions;
mod executions;
mod filters;
mod notifications;
mod runs;

pub(crate) use runs::start_workflow;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use testkube_core::service::RunService;
use testkube_core::store::ResultStore;
use testkube_results::artifacts::ArtifactReader;

use crate::auth::{Auth, Denied, Scope};
use crate::definitions::Definitions;
use crate::error::ApiError;
use crate::live::Registry;

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) service: RunService,
    pub(crate) store: Arc<dyn ResultStore>,
    pub(crate) definitions: Arc<dyn Definitions>,
    pub(crate) auth: Auth,
    pub(crate) live: Registry,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) artifacts: Arc<tokio::sync::Mutex<ArtifactReader>>,
    pub(crate) executor: String,
}

pub(crate) type AppRef = Arc<AppState>;

pub(crate) fn router(state: AppRef) -> Router {
    let executions = "/v1/test-workflow-executions/{id}";
    Router::new()
        .route(
            "/v1/test-workflows",
            get(definitions::list_workflows)
                .post(definitions::create_workflow)
                .put(definitions::validate_workflow),
        )
        .route(
            "/v1/test-workflows/{name}",
            get(definitions::get_workflow)
                .put(definitions::replace_workflow)
                .delete(definitions::delete_workflow),
        )
        .route(
            "/v1/test-workflows/{name}/executions",
            get(executions::list_of_workflow).post(runs::run),
        )
        .route(
            "/v1/test-workflows/{name}/abort",
            post(executions::abort_workflow),
        )
        .route(
            "/v1/test-workflow-templates",
            get(definitions::list_templates)
                .post(definitions::create_template)
                .put(definitions::validate_template),
        )
        .route(
            "/v1/test-workflow-templates/{name}",
            get(definitions::get_template)
                .put(definitions::replace_template)
                .delete(definitions::delete_template),
        )
        .route("/v1/test-workflow-executions", get(executions::list))
        .route(executions, get(executions::get))
        .route(&format!("{executions}/abort"), post(executions::abort))
        .route(&format!("{executions}/resume"), post(executions::resume))
        .route(&format!("{executions}/rerun"), post(runs::rerun))
        .route(&format!("{executions}/logs"), get(executions::logs))
        .route(
            &format!("{executions}/tags"),
            patch(executions::update_tags),
        )
        .route(
            &format!("{executions}/test-cases"),
            get(executions::test_cases),
        )
        .route(
            &format!("{executions}/notifications"),
            get(notifications::execution),
        )
        .route(
            &format!("{executions}/notifications/parallel-steps/{{step}}/{{index}}"),
            get(notifications::worker),
        )
        .route(
            &format!("{executions}/notifications/services/{{name}}/{{index}}"),
            get(notifications::service),
        )
        .route(&format!("{executions}/artifacts"), get(artifacts::list))
        .route(
            &format!("{executions}/artifacts/{{*name}}"),
            get(artifacts::download),
        )
        .route(
            &format!("{executions}/artifact-archive"),
            get(artifacts::archive),
        )
        .route("/v1/info", get(info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(problems))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize,
        ))
        .with_state(state)
}

/// The scope a request needs; `None` for the open routes.
pub(crate) fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if path == "/health" || path == "/openapi.json" {
        return None;
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Scope::Read);
    }
    let definition = |prefix: &str| {
        path.strip_prefix(prefix).is_some_and(|rest| {
            // `/v1/test-workflows`, `/v1/test-workflows/NAME`; not
            // `.../NAME/executions` or `.../NAME/abort`.
            rest.is_empty() || (rest.starts_with('/') && !rest[1..].contains('/'))
        })
    };
    if definition("/v1/test-workflows") || definition("/v1/test-workflow-templates") {
        // `PUT` on the collection only validates.
        let collection = path == "/v1/test-workflows" || path == "/v1/test-workflow-templates";
        if method == Method::PUT && collection {
            return Some(Scope::Read);
        }
        return Some(Scope::Admin);
    }
    Some(Scope::Run)
}

async fn authorize(State(state): State<AppRef>, request: Request, next: Next) -> Response {
    if matches!(state.auth, Auth::Disabled)
        && let Err(why) = from_this_machine(request.headers())
    {
        return ApiError::new(axum::http::StatusCode::FORBIDDEN, why).into_response();
    }
    let Some(scope) = required_scope(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match state.auth.check(header, scope) {
        Ok(()) => next.run(request).await,
        Err(Denied::Unauthenticated(why)) => ApiError::unauthorized(why).into_response(),
        Err(Denied::Forbidden(scope)) => ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!(
                "this token lacks the `{scope}` scope that {} {} needs; ask for a token with it",
                request.method(),
                request.uri().path()
            ),
        )
        .into_response(),
    }
}

/// Errors axum answers itself (a query that does not parse, a method a
/// route does not have) as problem documents too, so that every error of
/// the API has one shape.
async fn problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    ApiError::new(status, detail).into_response()
}

async fn metrics(State(state): State<AppRef>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Without tokens, only programs of this machine may call: a web page open
/// in a browser here could otherwise send requests (a cross-origin `POST`
/// needs no preflight) or read answers through a host name that resolves to
/// 127.0.0.1 (DNS rebinding). Browsers always send `Origin` on such
/// requests and the page's host in `Host`; curl, the CLI and CI jobs send
/// neither a foreign `Host` nor an `Origin`.
fn from_this_machine(headers: &axum::http::HeaderMap) -> Result<(), String> {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if !host.is_empty() && !matches!(name, "localhost" | "127.0.0.1" | "::1") {
        return Err(format!(
            "this server has no auth (--no-auth) and answers only requests to localhost, not `{host}`"
        ));
    }
    if headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|site| !matches!(site.as_bytes(), b"none" | b"same-origin"))
    {
        return Err(
            "this server has no auth (--no-auth): requests from web pages are refused".to_owned(),
        );
    }
    Ok(())
}

async fn health() -> &'static str {
    "OK"
}

async fn info(State(state): State<AppRef>) -> axum::Json<crate::api::Info> {
    axum::Json(crate::api::Info {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: "testkube-rs".to_owned(),
        executor: state.executor.clone(),
        auth: matches!(state.auth, Auth::Tokens(_)),
    })
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::openapi_json(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}; /openapi.json lists the API",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_needs_more_than_read() {
        let scope = |method: Method, path: &str| required_scope(&method, path);
        assert_eq!(scope(Method::GET, "/health"), None);
        assert_eq!(scope(Method::GET, "/v1/test-workflows"), Some(Scope::Read));
        assert_eq!(
            scope(Method::POST, "/v1/test-workflows"),
            Some(Scope::Admin)
        );
        assert_eq!(scope(Method::PUT, "/v1/test-workflows"), Some(Scope::Read));
        assert_eq!(
            scope(Method::PUT, "/v1/test-workflows/a"),
            Some(Scope::Admin)
        );
        assert_eq!(
            scope(Method::DELETE, "/v1/test-workflows/a"),
            Some(Scope::Admin)
        );
        assert_eq!(
            scope(Method::DELETE, "/v1/test-workflow-templates/a"),
            Some(Scope::Admin)
        );
        assert_eq!(
            scope(Method::PUT, "/v1/test-workflow-templates"),
            Some(Scope::Read)
        );
        assert_eq!(
            scope(Method::POST, "/v1/test-workflows/a/executions"),
            Some(Scope::Run)
        );
        assert_eq!(
            scope(Method::POST, "/v1/test-workflows/a/abort"),
            Some(Scope::Run)
        );
        assert_eq!(
            scope(Method::POST, "/v1/test-workflow-executions/x/abort"),
            Some(Scope::Run)
        );
        assert_eq!(scope(Method::PATCH, "/v1/anything"), Some(Scope::Run));
    }

    #[test]
    fn without_tokens_only_this_machine_may_call() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = axum::http::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        assert!(from_this_machine(&headers(&[("host", "127.0.0.1:8088")])).is_ok());
        assert!(from_this_machine(&headers(&[("host", "localhost")])).is_ok());
        assert!(from_this_machine(&headers(&[("host", "[::1]:8088")])).is_ok());
        assert!(from_this_machine(&headers(&[])).is_ok());
        assert!(from_this_machine(&headers(&[("host", "evil.example:8088")])).is_err());
        assert!(
            from_this_machine(&headers(&[
                ("host", "127.0.0.1:8088"),
                ("origin", "https://evil.example")
            ]))
            .is_err()
        );
        assert!(
            from_this_machine(&headers(&[
                ("host", "localhost:8088"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_err()
        );
    }
}
