//! Label and field selectors as `list`, `watch` and `deletecollection` take
//! them (`app=web,tier!=db,env in (a,b),!legacy`; `status.phase=Running`).

use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::Eq(v), Some(x)) => v == x,
            (Op::Eq(_), None) => false,
            (Op::NotEq(v), x) => x != Some(v.as_str()),
            (Op::In(vs), Some(x)) => vs.iter().any(|v| v == x),
            (Op::In(_), None) => false,
            (Op::NotIn(vs), x) => x.is_none_or(|x| !vs.iter().any(|v| v == x)),
            (Op::Exists, x) => x.is_some(),
            (Op::NotExists, x) => x.is_none(),
        }
    }
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

/// Splits at commas outside parentheses.
fn split_top(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

fn set_values(text: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("unable to parse requirement: found '{whole}', expected: '(' ... ')'")))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

impl LabelSelector {
    /// Parses `labelSelector`.
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(text) {
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement { key: key.trim().into(), op: Op::NotExists }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement { key: k.trim().into(), op: Op::NotEq(v.trim().into()) }
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement { key: k.trim().into(), op: Op::Eq(v.trim().into()) }
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement { key: k.trim().into(), op: Op::Eq(v.trim().into()) }
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Requirement { key: k.trim().into(), op: Op::NotIn(set_values(v, part)?) }
            } else if let Some((k, v)) = part.split_once(" in ") {
                Requirement { key: k.trim().into(), op: Op::In(set_values(v, part)?) }
            } else if part.contains(' ') || part.contains('(') {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: {part:?}: expected one of =, ==, !=, in, notin"
                )));
            } else {
                Requirement { key: part.into(), op: Op::Exists }
            };
            if req.key.is_empty() {
                return Err(ApiError::bad_request(format!("unable to parse requirement: empty key in {part:?}")));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether an object's `metadata.labels` match.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.0.iter().all(|r| r.matches(labels[&r.key].as_str()))
    }
}

/// Fields a field selector may name, per storage key (plus metadata.name
/// and metadata.namespace for every type).
fn field_supported(key: &str, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match key {
        "/pods" => matches!(
            field,
            "status.phase" | "spec.nodeName" | "spec.restartPolicy" | "spec.schedulerName"
                | "spec.serviceAccountName" | "status.podIP" | "status.nominatedNodeName"
        ),
        "/events" | "events.k8s.io/events" => {
            field.starts_with("involvedObject.") || field.starts_with("regarding.")
                || matches!(field, "reason" | "type" | "source" | "reportingComponent")
        }
        "/secrets" => field == "type",
        "/namespaces" => field == "status.phase",
        "batch/jobs" => field == "status.successful",
        _ => false,
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<Requirement>);

impl FieldSelector {
    /// Parses `fieldSelector` for the resource stored under `key`.
    pub(crate) fn parse(text: &str, key: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(text) {
            let (field, op) = if let Some((k, v)) = part.split_once("!=") {
                (k.trim(), Op::NotEq(v.trim().into()))
            } else if let Some((k, v)) = part.split_once("==") {
                (k.trim(), Op::Eq(v.trim().into()))
            } else if let Some((k, v)) = part.split_once('=') {
                (k.trim(), Op::Eq(v.trim().into()))
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{part}'; can't understand '{part}'")));
            };
            if !field_supported(key, field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            reqs.push(Requirement { key: field.into(), op });
        }
        Ok(Self(reqs))
    }

    /// Whether the object's fields match (missing fields compare as "").
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|r| {
            let mut v = object;
            for seg in r.key.split('.') {
                v = &v[seg];
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            r.matches(Some(&text))
        })
    }
}

/// Label and field selectors together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
}

impl Selectors {
    /// Whether an object matches both.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_operators() {
        let pod = json!({"metadata": {"labels": {"app": "web", "env": "prod"}}});
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("env in (dev, prod)", true),
            ("env notin (dev,prod)", false),
            ("tier notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!tier", true),
            ("app=web,env in (dev)", false),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&pod), want, "{sel}");
        }
        assert!(LabelSelector::parse("env in dev").is_err());
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns"}, "status": {"phase": "Running"}});
        assert!(FieldSelector::parse("status.phase=Running,metadata.name=a", "/pods").unwrap().matches(&pod));
        assert!(!FieldSelector::parse("status.phase!=Running", "/pods").unwrap().matches(&pod));
        assert!(FieldSelector::parse("spec.nodeName=", "/pods").unwrap().matches(&pod));
        let err = FieldSelector::parse("spec.foo=1", "/pods").unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.foo");
    }
}
