//! The audit log: one `audit.k8s.io/v1` Event per line, like the real
//! server's log backend at level `Request` (the request object for writes,
//! no response object). Controllers and the kubelet write to the store
//! directly, so only client requests appear. A watch is logged when it
//! starts (the real server logs it when it ends), so counts do not depend
//! on when watches close.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Info;

/// An open audit log file.
pub(crate) struct AuditLog {
    file: Mutex<std::fs::File>,
}

fn micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl AuditLog {
    /// Opens (creates, appends to) the file.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file: Mutex::new(file) })
    }

    /// Writes one request's line.
    pub(crate) fn record(&self, info: &Info, code: u16, request_object: Option<&Value>, received: DateTime<Utc>) {
        let mut event = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
            "auditID": uuid::Uuid::new_v4().to_string(), "stage": "ResponseComplete",
            "requestURI": info.uri, "verb": info.verb,
            "user": {"username": "kube-sim", "groups": ["system:masters", "system:authenticated"]},
            "sourceIPs": ["127.0.0.1"], "userAgent": info.user_agent,
        });
        if let Some((group, version, resource)) = &info.resource {
            let mut object_ref = json!({"resource": resource, "apiVersion": version});
            if !group.is_empty() {
                object_ref["apiGroup"] = json!(group);
            }
            if let Some(ns) = &info.namespace {
                object_ref["namespace"] = json!(ns);
            }
            if let Some(name) = &info.name {
                object_ref["name"] = json!(name);
            }
            if let Some(sub) = &info.subresource {
                object_ref["subresource"] = json!(sub);
            }
            event["objectRef"] = object_ref;
        }
        event["responseStatus"] = json!({"metadata": {}, "code": code});
        if let Some(object) = request_object {
            event["requestObject"] = object.clone();
        }
        event["requestReceivedTimestamp"] = json!(micros(received));
        event["stageTimestamp"] = json!(micros(Utc::now()));
        let mut line = event.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("kube-sim: writing the audit log failed: {e}");
        }
    }
}

/// Reads an audit log back (for tests and tools): one Event per line.
pub fn read_audit_log(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        .collect()
}
