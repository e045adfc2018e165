//! Server-side printing (`Accept: ...;as=Table;g=meta.k8s.io;v=v1`), which
//! `kubectl get` asks for: a few columns per type, as the real server
//! prints them for pods and jobs, NAME and AGE for the rest.

use serde_json::{Value, json};

use super::Query;
use crate::registry::ResourceType;

fn age(object: &Value) -> String {
    let Some(created) = object["metadata"]["creationTimestamp"].as_str() else { return "<unknown>".into() };
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created) else { return "<unknown>".into() };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn column(name: &str, kind: &str) -> Value {
    json!({"name": name, "type": kind, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": 0})
}

fn pod_status(pod: &Value) -> String {
    if pod["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
        return "Terminating".into();
    }
    for list in ["initContainerStatuses", "containerStatuses"] {
        for c in pod["status"][list].as_array().into_iter().flatten() {
            if let Some(r) = c["state"]["terminated"]["reason"].as_str()
                && (r != "Completed" || list == "containerStatuses")
            {
                return r.into();
            }
            if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
                return r.into();
            }
        }
    }
    pod["status"]["reason"].as_str().or(pod["status"]["phase"].as_str()).unwrap_or("Pending").into()
}

fn cells(t: &ResourceType, o: &Value) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    match t.key().as_str() {
        "/pods" => {
            let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|c| c["ready"] == json!(true)).count();
            vec![name, json!(format!("{ready}/{total}")), json!(pod_status(o)), json!(0), json!(age(o))]
        }
        "batch/jobs" => {
            let status = &o["status"];
            let text = if status["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Failed" && c["status"] == "True") {
                "Failed"
            } else if status["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Complete" && c["status"] == "True") {
                "Complete"
            } else {
                "Running"
            };
            let done = status["succeeded"].as_i64().unwrap_or(0);
            let want = o["spec"]["completions"].as_i64().unwrap_or(1);
            vec![name, json!(text), json!(format!("{done}/{want}")), json!(age(o))]
        }
        _ => vec![name, json!(age(o))],
    }
}

/// The Table for a list (or one object).
pub(super) fn table(t: &ResourceType, items: &[Value], rv: u64, query: &Query) -> Value {
    let columns = match t.key().as_str() {
        "/pods" => vec![column("Name", "string"), column("Ready", "string"), column("Status", "string"), column("Restarts", "integer"), column("Age", "string")],
        "batch/jobs" => vec![column("Name", "string"), column("Status", "string"), column("Completions", "string"), column("Age", "string")],
        _ => vec![column("Name", "string"), column("Created At", "date")],
    };
    let full = query.get("includeObject") == Some("Object");
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut c = cells(t, o);
            if columns.len() == 2 {
                c[1] = o["metadata"]["creationTimestamp"].clone();
            }
            let object = if full {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
            };
            json!({"cells": c, "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns, "rows": rows,
    })
}
