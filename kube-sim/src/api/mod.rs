//! The HTTP front: one handler parses every Kubernetes path into a request
//! (verb, resource type, namespace, name, subresource) as the real server's
//! request-info parser does, checks injected faults, dispatches, and writes
//! the audit line. Discovery, `/version` and the fault endpoints live here
//! too; the verbs are in `rest.rs`, watches in `watch.rs`.

pub(crate) mod audit;
mod faults;
mod openapi;
mod rest;
mod table;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use faults::FailRule;
pub(crate) use faults::Faults;

use crate::error::ApiError;
use crate::kubelet::Kubelet;
use crate::registry::{self, ResourceType};
use crate::store::Store;

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<Store>,
    pub(crate) audit: Option<audit::AuditLog>,
    pub(crate) faults: Faults,
    pub(crate) kubelet: Arc<Kubelet>,
    pub(crate) bookmark_interval: Duration,
    pub(crate) address: String,
}

/// A parsed resource request.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) t: Arc<ResourceType>,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

/// Query parameters, in order (repeated keys kept).
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub(crate) Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// One request as the audit log and the fault rules see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Info {
    pub(crate) verb: String,
    pub(crate) uri: String,
    pub(crate) path: String,
    pub(crate) resource: Option<(String, String, String)>,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
    pub(crate) user_agent: String,
}

/// The router: fault endpoints, the exec WebSocket route, everything else
/// through [`handle`].
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(faults::routes())
        .merge(crate::kubelet::exec::routes())
        .fallback(handle)
        .with_state(shared)
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (code, axum::Json(value.clone())).into_response()
}

/// Splits a path into (group, version, rest segments) for resource paths.
fn split_api_path(path: &str) -> Option<(String, String, Vec<String>)> {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(str::to_string).collect();
    match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 2 => Some((String::new(), segs[1].clone(), segs[2..].to_vec())),
        Some("apis") if segs.len() >= 3 => Some((segs[1].clone(), segs[2].clone(), segs[3..].to_vec())),
        _ => None,
    }
}

/// The resource a path names, as the real server's request-info parser reads it.
pub(crate) fn parse_target(store: &Store, path: &str) -> Result<Option<Target>, ApiError> {
    let Some((group, version, segs)) = split_api_path(path) else { return Ok(None) };
    if segs.is_empty() {
        return Ok(None);
    }
    let mut parts: &[String] = &segs;
    let mut namespace = None;
    if parts[0] == "namespaces" && parts.len() > 1 {
        namespace = Some(parts[1].clone());
        if parts.len() > 2 && !matches!(parts[2].as_str(), "status" | "finalize") {
            parts = &parts[2..];
        }
    }
    if parts.len() > 3 {
        return Err(ApiError::no_route(path));
    }
    let registry = store.registry();
    let Some(t) = registry.find(&group, &version, &parts[0]) else {
        return Err(ApiError::no_route(path));
    };
    let (name, subresource) = if parts[0] == "namespaces" && t.group.is_empty() {
        (namespace.take().or_else(|| parts.get(1).cloned()), parts.get(2).cloned())
    } else {
        (parts.get(1).cloned(), parts.get(2).cloned())
    };
    if t.namespaced != namespace.is_some() && !(t.namespaced && name.is_none()) {
        return Err(ApiError::no_route(path));
    }
    Ok(Some(Target { t, namespace, name, subresource }))
}

fn verb_of(method: &Method, target: Option<&Target>, query: &Query) -> String {
    let named = target.is_some_and(|t| t.name.is_some());
    match *method {
        Method::GET if !named && query.flag("watch") => "watch",
        Method::GET if !named && target.is_some() => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
    .into()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading the request body: {e}")).into_response(),
    };
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let target = parse_target(&shared.store, &path);
    let info = Info {
        verb: verb_of(&parts.method, target.as_ref().ok().and_then(Option::as_ref), &query),
        uri: parts.uri.to_string(),
        path: path.clone(),
        resource: target.as_ref().ok().and_then(Option::as_ref).map(|t| (t.t.group.clone(), t.t.version.clone(), t.t.plural.clone())),
        namespace: target.as_ref().ok().and_then(Option::as_ref).and_then(|t| t.namespace.clone()),
        name: target.as_ref().ok().and_then(Option::as_ref).and_then(|t| t.name.clone()),
        subresource: target.as_ref().ok().and_then(Option::as_ref).and_then(|t| t.subresource.clone()),
        user_agent: parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").into(),
    };
    let request_object = if matches!(info.verb.as_str(), "create" | "update" | "patch") && target.as_ref().is_ok_and(Option::is_some) {
        serde_json::from_slice::<Value>(&body).ok().or_else(|| {
            std::str::from_utf8(&body).ok().and_then(|t| serde_saphyr::from_str::<Value>(t).ok())
        })
    } else {
        None
    };
    let received = chrono::Utc::now();
    let response = if let Some(code) = shared.faults.take(&info) {
        ApiError::injected(code).into_response()
    } else {
        match target {
            Err(e) => e.into_response(),
            Ok(None) => non_resource(&shared, &parts.method, &path, &parts.headers),
            Ok(Some(target)) => rest::dispatch(&shared, &parts.method, &parts.headers, &query, &body, target, &info)
                .await
                .unwrap_or_else(IntoResponse::into_response),
        }
    };
    if let Some(audit) = &shared.audit {
        audit.record(&info, response.status().as_u16(), request_object.as_ref(), received);
    }
    response
}

/// Discovery, `/version`, health.
fn non_resource(shared: &Shared, method: &Method, path: &str, _headers: &HeaderMap) -> Response {
    if *method != Method::GET && *method != Method::HEAD {
        return ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource ({path})")).into_response();
    }
    let registry = shared.store.registry();
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let value = match segs.as_slice() {
        ["version"] => Some(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim", "gitCommit": "kube-sim",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
            "compiler": "gc", "platform": "linux/amd64",
        })),
        ["healthz" | "readyz" | "livez"] => return (StatusCode::OK, "ok").into_response(),
        ["api"] => Some(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.address}],
        })),
        ["apis"] => Some(registry::api_group_list(&registry)),
        ["api", version] => registry::resource_list(&registry, "", version),
        ["apis", group] => registry::api_group(&registry, group),
        ["apis", group, version] => registry::resource_list(&registry, group, version),
        ["openapi", "v3"] => Some(openapi::index(&registry)),
        ["openapi", "v3", "api", version] => openapi::document(&registry, "", version),
        ["openapi", "v3", "apis", group, version] => openapi::document(&registry, group, version),
        _ => None,
    };
    match value {
        Some(v) => json_response(StatusCode::OK, &v),
        None => ApiError::no_route(path).into_response(),
    }
}
