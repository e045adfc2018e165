//! The verbs on resources: get, list (and watch, in `watch.rs`), create,
//! update, patch (merge, JSON, strategic, apply), delete, deletecollection,
//! the status subresource, and the pod subresources `log` and `eviction`.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Info, Query, Shared, Target, table, watch};
use crate::error::ApiError;
use crate::patch::{self, PatchKind};
use crate::select::{FieldSelector, LabelSelector, Selectors};
use crate::store::{DeleteOptions, Part, Propagation};

fn ok(code: StatusCode, value: Value) -> Result<Response, ApiError> {
    Ok((code, axum::Json(value)).into_response())
}

pub(super) fn selectors(query: &Query, key: &str) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or(""), key)?,
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn part(sub: Option<&str>, target: &Target) -> Result<Part, ApiError> {
    match sub {
        None => Ok(Part::Main),
        Some("status") if target.t.status => Ok(Part::Status),
        Some(other) => Err(ApiError::no_route(&format!("{}/{other}", target.t.plural))),
    }
}

pub(super) async fn dispatch(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    query: &Query,
    body: &[u8],
    target: Target,
    info: &Info,
) -> Result<Response, ApiError> {
    let store = &shared.store;
    let t = target.t.clone();
    let ns = target.namespace.clone().unwrap_or_default();
    let sub = target.subresource.as_deref();
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    match (method, target.name.clone()) {
        (&Method::GET, None) => {
            let sel = selectors(query, &t.key())?;
            if info.verb == "watch" {
                return watch::serve(shared, &target, query, sel);
            }
            let (items, rv) = store.list(&t, target.namespace.as_deref(), &sel);
            if accept.contains("as=Table") {
                return ok(StatusCode::OK, table::table(&t, &items, rv, query));
            }
            ok(StatusCode::OK, json!({
                "kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
                "metadata": {"resourceVersion": rv.to_string()}, "items": items,
            }))
        }
        (&Method::GET, Some(name)) => match sub {
            Some("log") if t.key() == "/pods" => shared.kubelet.logs(&ns, &name, query).await,
            Some("exec" | "attach" | "portforward") => Err(ApiError::bad_request("Upgrade request required")),
            _ => {
                part(sub, &target)?;
                let object = store.get(&t, &ns, &name)?;
                if accept.contains("as=Table") {
                    return ok(StatusCode::OK, table::table(&t, &[object], store.resource_version(), query));
                }
                ok(StatusCode::OK, object)
            }
        },
        (&Method::POST, None) => {
            if target.namespace.is_none() && t.namespaced {
                return Err(ApiError::method_not_allowed(format!("POST on all namespaces of {} is not allowed: name a namespace", t.plural)));
            }
            let object = parse_json(body)?;
            ok(StatusCode::CREATED, store.create(&t, &ns, object)?)
        }
        (&Method::POST, Some(name)) if sub == Some("eviction") && t.key() == "/pods" => {
            crate::kubelet::evict(store, &ns, &name)?;
            ok(StatusCode::CREATED, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
        }
        (&Method::PUT, Some(name)) => {
            let p = part(sub, &target)?;
            let object = parse_json(body)?;
            ok(StatusCode::OK, store.update(&t, &ns, &name, object, p)?)
        }
        (&Method::PATCH, Some(name)) => {
            let p = part(sub, &target)?;
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            let kind = PatchKind::from_content_type(content_type)?;
            let patch_body = patch::parse_body(kind, body)?;
            if kind == PatchKind::Apply {
                if query.get("fieldManager").is_none_or(str::is_empty) {
                    return Err(ApiError::invalid(&t, &name, "fieldManager", "FieldValueRequired", "Required value: is required for apply patch"));
                }
                if store.get(&t, &ns, &name).is_err() && p == Part::Main {
                    let mut object = patch_body;
                    object["metadata"]["name"] = json!(name);
                    return ok(StatusCode::CREATED, store.create(&t, &ns, object)?);
                }
            }
            let updated = store.modify(&t, &ns, &name, p, |object| {
                if p == Part::Status && kind == PatchKind::Apply {
                    // Apply to /status takes only the status stanza.
                    let status = json!({"status": patch_body.get("status").cloned().unwrap_or(Value::Null)});
                    return patch::apply(kind, object, &status);
                }
                patch::apply(kind, object, &patch_body)
            })?;
            ok(StatusCode::OK, updated)
        }
        (&Method::DELETE, name) => {
            let opts = delete_options(query, body)?;
            match name {
                Some(name) => {
                    let result = store.delete(&t, &ns, &name, &opts)?;
                    let code = if result["kind"] == "Status" { StatusCode::OK } else { StatusCode::ACCEPTED };
                    ok(code, result)
                }
                None => {
                    let sel = selectors(query, &t.key())?;
                    let items = store.delete_collection(&t, target.namespace.as_deref(), &sel, &opts);
                    ok(StatusCode::OK, json!({
                        "kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
                        "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items,
                    }))
                }
            }
        }
        _ => Err(ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource ({})", info.path))),
    }
}

fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) { Value::Null } else { parse_json(body)? };
    let grace = query
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse::<i64>().ok())
        .or_else(|| body["gracePeriodSeconds"].as_i64());
    let policy = query
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| body["propagationPolicy"].as_str().map(str::to_string));
    let propagation = match policy.as_deref() {
        None => match body["orphanDependents"].as_bool() {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        },
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Background\", \"Foreground\", \"Orphan\""
            )));
        }
    };
    Ok(DeleteOptions {
        grace,
        propagation,
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_string),
    })
}
