//! Fault injection: failing requests with 5xx, and the HTTP endpoints under
//! `/kube-sim/` that tests (or any process) use when they cannot hold the
//! library handle: evict a pod, lose the node, fail requests, expire
//! watches. The same operations are methods of `KubeSimHandle`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::{Info, Shared};
use crate::error::ApiError;

/// A rule failing the next `count` requests that match.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailRule {
    /// Verb to match (`get`, `list`, `watch`, `create`, ...); any when absent.
    #[serde(default)]
    pub verb: Option<String>,
    /// Substring of the request path to match; any when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// The status code to answer with (500 or 503 and other 5xx).
    pub code: u16,
    /// How many matching requests fail.
    pub count: u32,
}

/// The active rules.
#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<FailRule>>,
}

impl Faults {
    pub(crate) fn add(&self, rule: FailRule) {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(rule);
    }

    /// The code to fail this request with, counting it against its rule.
    pub(crate) fn take(&self, info: &Info) -> Option<u16> {
        if info.path.starts_with("/kube-sim/") {
            return None;
        }
        let mut rules = self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = rules.iter().position(|r| {
            r.count > 0
                && r.verb.as_ref().is_none_or(|v| v == &info.verb)
                && r.path.as_ref().is_none_or(|p| info.uri.contains(p.as_str()))
        })?;
        rules[i].count -= 1;
        let code = rules[i].code;
        if rules[i].count == 0 {
            rules.remove(i);
        }
        Some(code)
    }
}

#[derive(Deserialize)]
struct PodRef {
    namespace: Option<String>,
    name: String,
}

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/kube-sim/evict", post(evict))
        .route("/kube-sim/lose-node", post(lose_node))
        .route("/kube-sim/restore-node", post(restore_node))
        .route("/kube-sim/fail-requests", post(fail_requests))
        .route("/kube-sim/expire-watches", post(expire_watches))
}

async fn evict(State(s): State<Arc<Shared>>, Query(p): Query<PodRef>) -> Response {
    let ns = p.namespace.unwrap_or_else(|| "default".into());
    match crate::kubelet::evict(&s.store, &ns, &p.name) {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn lose_node(State(s): State<Arc<Shared>>) -> Response {
    s.kubelet.lose_node().await;
    (StatusCode::OK, axum::Json(json!({"node": "kube-sim", "lost": true}))).into_response()
}

async fn restore_node(State(s): State<Arc<Shared>>) -> Response {
    s.kubelet.restore_node();
    (StatusCode::OK, axum::Json(json!({"node": "kube-sim", "lost": false}))).into_response()
}

async fn fail_requests(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let rule: FailRule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request(format!(
                "fail-requests wants {{\"code\": 500|503, \"count\": N, \"verb\"?: \"get\", \"path\"?: \"substring\"}}: {e}"
            ))
            .into_response();
        }
    };
    if !(500..600).contains(&rule.code) {
        return ApiError::bad_request(format!("fail-requests: code {} is not a 5xx code", rule.code)).into_response();
    }
    s.faults.add(rule);
    (StatusCode::OK, axum::Json(json!({"added": true}))).into_response()
}

async fn expire_watches(State(s): State<Arc<Shared>>) -> Response {
    s.store.expire_watches();
    (StatusCode::OK, axum::Json(json!({"resourceVersion": s.store.resource_version().to_string()}))).into_response()
}
