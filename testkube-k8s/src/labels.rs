//! The labels and names of everything a run creates: every object carries
//! its execution and worker, so that an engine finds them again by label
//! (one shared watch, re-attaching after a restart) and a person can
//! `kubectl get jobs -l testkube.io/execution=...`.

/// The execution id.
pub const EXECUTION: &str = "testkube.io/execution";
/// The worker's number in its execution (`0` for the root worker).
pub const WORKER: &str = "testkube.io/worker";
/// The workflow's name.
pub const WORKFLOW: &str = "testkube.io/workflow";
/// What the object is for: `worker`, or [`SERVICE_RESOURCE`].
pub const RESOURCE: &str = "testkube.io/resource";
/// The [`RESOURCE`] of a service instance's pod.
pub const SERVICE_RESOURCE: &str = "service";
/// The service's name, on a service instance's pod.
pub const SERVICE: &str = "testkube.io/service";
/// The instance's index, on a service instance's pod.
pub const SERVICE_INDEX: &str = "testkube.io/service-index";
/// The annotation with the id of the step that started a service.
pub const SERVICE_STEP: &str = "testkube.io/service-step";
/// Who manages the object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "testkube-rs";
/// The annotation with the worker's path (`root/tests/2`): paths hold `/`,
/// which label values cannot.
pub const WORKER_PATH: &str = "testkube.io/worker-path";
/// The finalizer that keeps a pod until its logs, verdict and artifacts are
/// stored.
pub const FINALIZER: &str = "testkube.io/results";

/// The longest label value and object name part Kubernetes takes.
const MAX_LABEL: usize = 63;

/// `value` as a valid label value: kept when it is one, otherwise invalid
/// characters become `-`, and a value too long is cut and given a hash of
/// the whole, so that different values stay different.
#[must_use]
pub fn label_value(value: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut text: String = value
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    let changed = text != value;
    if changed || text.len() > MAX_LABEL {
        text.truncate(MAX_LABEL - 9);
        text = format!(
            "{}-{:08x}",
            text.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()),
            fnv1a(value) as u32
        );
    }
    let trimmed = text.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        format!("x{:08x}", fnv1a(value) as u32)
    } else {
        trimmed.to_owned()
    }
}

/// `name` as a DNS-1123 label (object names of Jobs and pods): lower case,
/// alphanumerics and `-`, at most `max` characters, with a hash when cut.
#[must_use]
pub fn dns_label(name: &str, max: usize) -> String {
    let mut text: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if text.len() > max {
        text.truncate(max.saturating_sub(9));
        text = format!("{}-{:08x}", text.trim_end_matches('-'), fnv1a(name) as u32);
    }
    let trimmed = text.trim_matches('-');
    if trimmed.is_empty() {
        format!("x{:08x}", fnv1a(name) as u32)
    } else {
        trimmed.to_owned()
    }
}

/// A stable 64-bit FNV-1a hash: the same name gives the same object name in
/// every build (std's hasher is randomly seeded).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_kept_or_made_valid_and_stay_distinct() {
        assert_eq!(
            label_value("sharded-pytest-1765-42"),
            "sharded-pytest-1765-42"
        );
        let long = "a".repeat(100);
        let other = format!("{}b", "a".repeat(99));
        assert!(label_value(&long).len() <= MAX_LABEL);
        assert_ne!(label_value(&long), label_value(&other));
        assert!(label_value("root/tests/2").starts_with("root-tests-2-"));
        assert!(label_value("-").starts_with('x'));
    }

    #[test]
    fn dns_labels_are_lower_case_and_bounded() {
        assert_eq!(dns_label("My_Workflow-1", 63), "my-workflow-1");
        let name = dns_label(&"x".repeat(80), 52);
        assert!(name.len() <= 52, "{name}");
    }
}
