//! Step ids: explicit ids kept, the others derived deterministically (see the
//! module documentation of [`crate::plan`] for the rules).

use std::collections::BTreeSet;

use crate::model::Step;

/// The ids taken in one namespace (a workflow, or one parallel worker).
#[derive(Debug, Default)]
pub(crate) struct IdNamespace {
    taken: BTreeSet<String>,
}

impl IdNamespace {
    /// A namespace where the explicit ids of `steps` (and their sub-steps,
    /// not crossing into parallel blocks) and `root` are reserved.
    pub(crate) fn reserving<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Self {
        let mut namespace = IdNamespace::default();
        namespace.taken.insert("root".to_owned());
        let mut pending: Vec<&Step> = steps.into_iter().collect();
        while let Some(step) = pending.pop() {
            if let Some(id) = step.id.as_deref().filter(|id| !id.is_empty()) {
                namespace.taken.insert(id.to_owned());
            }
            pending.extend(step.setup.iter().chain(&step.steps));
        }
        namespace
    }

    /// The id of `step`, the `position`-th (1-based) child of `parent_id`.
    pub(crate) fn assign(&mut self, step: &Step, parent_id: &str, position: usize) -> String {
        if let Some(id) = step.id.as_deref().filter(|id| !id.is_empty()) {
            return id.to_owned();
        }
        let derived = step
            .name
            .as_deref()
            .map(derive_step_id)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("{parent_id}_{position}"));
        let mut candidate = derived.clone();
        let mut suffix = 1;
        while self.taken.contains(&candidate) {
            candidate = format!("{derived}_{suffix}");
            suffix += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

/// Testkube's rule: lower-case letters and digits kept, every run of other
/// characters becomes one `_`, leading and trailing `_` trimmed.
pub(crate) fn derive_step_id(name: &str) -> String {
    let mut id = String::with_capacity(name.len());
    let mut after_separator = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            id.extend(c.to_lowercase());
            after_separator = false;
        } else if !after_separator {
            id.push('_');
            after_separator = true;
        }
    }
    id.trim_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Step {
        Step {
            name: Some(name.into()),
            ..Step::default()
        }
    }

    #[test]
    fn names_become_ids_like_testkube() {
        assert_eq!(derive_step_id("Run e2e tests!"), "run_e2e_tests");
        assert_eq!(derive_step_id("  --Build--  "), "build");
        assert_eq!(derive_step_id("Ünïcode Step"), "ünïcode_step");
        assert_eq!(derive_step_id("!!!"), "");
    }

    #[test]
    fn derived_ids_avoid_explicit_and_earlier_ids() {
        let explicit = Step {
            id: Some("build".into()),
            ..Step::default()
        };
        let steps = [
            named("Build"),
            explicit.clone(),
            named("Build"),
            Step::default(),
        ];
        let mut ids = IdNamespace::reserving(steps.iter());
        let assigned: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| ids.assign(step, "root", i + 1))
            .collect();
        assert_eq!(assigned, ["build_1", "build", "build_2", "root_4"]);
    }
}
