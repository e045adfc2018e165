//! API errors, rendered as `Status` objects shaped like the real API
//! server's (message, reason, details, code), so clients that match on them
//! (kube-rs `ErrorResponse`, kubectl) behave as they would against a cluster.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// An error the API answers with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} ({code} {reason})")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, ...).
    pub reason: String,
    /// Human-readable message, worded as the real server words it.
    pub message: String,
    /// `details` of the Status, if any.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String, details: Option<Value>) -> Self {
        Self { code, reason: reason.into(), message, details }
    }

    fn details(t: &ResourceType, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": t.plural});
        if !t.group.is_empty() {
            d["group"] = json!(t.group);
        }
        d
    }

    /// 404: `pods "x" not found`.
    pub(crate) fn not_found(t: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", t.qualified()),
            Some(Self::details(t, name)),
        )
    }

    /// 404 for a path no type is served at.
    pub(crate) fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"), None)
    }

    /// 409: `pods "x" already exists`.
    pub(crate) fn already_exists(t: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", t.qualified()),
            Some(Self::details(t, name)),
        )
    }

    /// 409: the resourceVersion (or uid precondition) did not match.
    pub(crate) fn conflict(t: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", t.qualified()),
            Some(Self::details(t, name)),
        )
    }

    /// 409 for an update racing another one.
    pub(crate) fn modified(t: &ResourceType, name: &str) -> Self {
        Self::conflict(
            t,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `Pod "x" is invalid: FIELD: MESSAGE`.
    pub(crate) fn invalid(t: &ResourceType, name: &str, field: &str, cause_reason: &str, message: &str) -> Self {
        let mut details = json!({
            "name": name, "kind": t.kind,
            "causes": [{"reason": cause_reason, "message": message, "field": field}],
        });
        if !t.group.is_empty() {
            details["group"] = json!(t.group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {message}", t.kind),
            Some(details),
        )
    }

    /// 400 with a message.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 403 (namespace terminating and similar).
    pub(crate) fn forbidden(t: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", t.qualified()),
            Some(Self::details(t, name)),
        )
    }

    /// 405 for a verb a resource does not support.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into(), None)
    }

    /// 410: the requested resourceVersion was compacted away.
    pub(crate) fn gone(requested: u64, oldest: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"), None)
    }

    /// 415 for an unknown patch type.
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"),
            None,
        )
    }

    /// 500 (also what an unreachable kubelet gives for logs).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {}", message.into()), None)
    }

    /// An injected failure with a chosen 5xx code.
    pub(crate) fn injected(code: u16) -> Self {
        let reason = if code == 503 { "ServiceUnavailable" } else { "InternalError" };
        Self::new(code, reason, format!("kube-sim: injected failure ({code})"), None)
    }

    /// The `Status` object.
    pub(crate) fn status(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v["code"] = json!(self.code);
        v
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.status())).into_response()
    }
}

/// A `Status` object for a successful delete of an object that is gone.
pub(crate) fn success_status(t: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": t.plural, "uid": uid});
    if !t.group.is_empty() {
        details["group"] = json!(t.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
