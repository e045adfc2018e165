//! Object names: generated suffixes and the validity rules.

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
