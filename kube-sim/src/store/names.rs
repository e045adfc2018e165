//! Object names (generated suffixes, validity) and the shape every stored
//! object must have.

use serde_json::Value;

use crate::registry::ResourceType;

pub(super) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Why a name is not a valid DNS subdomain (or, for namespaces, label).
pub(super) fn invalid_name(name: &str, t: &ResourceType) -> Option<String> {
    let max = if t.plural == "namespaces" { 63 } else { 253 };
    if name.len() > max {
        return Some(format!("must be no more than {max} characters"));
    }
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok_chars && ok_ends {
        return None;
    }
    if t.custom || t.plural == "events" || t.group.starts_with("rbac") {
        // Looser rules (path segment names) for these.
        return (name.contains('/') || name == "." || name == "..")
            .then(|| "may not contain '/'".to_string());
    }
    Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into())
}

/// Why an object's shape cannot be stored: `metadata`, `spec` and `status`
/// are objects, labels and annotations map strings to strings,
/// `finalizers` is a list of strings and `ownerReferences` a list of
/// objects (what the server and its controllers rely on).
pub(super) fn check_shape(object: &Value) -> Result<(), (String, String)> {
    let Some(top) = object.as_object() else {
        return Err(("".into(), "the request body is not a JSON object".into()));
    };
    for field in ["metadata", "spec", "status"] {
        if top
            .get(field)
            .is_some_and(|v| !v.is_object() && !v.is_null())
        {
            return Err((field.into(), "Invalid value: must be an object".into()));
        }
    }
    let meta = &object["metadata"];
    for field in ["labels", "annotations"] {
        let v = &meta[field];
        if !v.is_null()
            && !v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
        {
            return Err((
                format!("metadata.{field}"),
                "Invalid value: must map strings to strings".into(),
            ));
        }
    }
    let finalizers = &meta["finalizers"];
    if !finalizers.is_null()
        && !finalizers
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err((
            "metadata.finalizers".into(),
            "Invalid value: must be a list of strings".into(),
        ));
    }
    let owners = &meta["ownerReferences"];
    if !owners.is_null()
        && !owners
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_object))
    {
        return Err((
            "metadata.ownerReferences".into(),
            "Invalid value: must be a list of objects".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check_shape;

    #[test]
    fn shapes_that_would_break_the_server_are_refused() {
        assert!(
            check_shape(&json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {}}))
                .is_ok()
        );
        for (bad, field) in [
            (json!("text"), ""),
            (json!({"metadata": "x"}), "metadata"),
            (json!({"spec": 5}), "spec"),
            (json!({"metadata": {"labels": {"x": 1}}}), "metadata.labels"),
            (
                json!({"metadata": {"finalizers": "f"}}),
                "metadata.finalizers",
            ),
            (
                json!({"metadata": {"ownerReferences": ["x"]}}),
                "metadata.ownerReferences",
            ),
        ] {
            assert_eq!(check_shape(&bad).unwrap_err().0, field, "{bad}");
        }
    }
}
