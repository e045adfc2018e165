//! The templates a workflow can `use`: looked up by name, with the format's
//! `a/b` ↔ `a--b` naming, from the workflow's own file, a templates folder and
//! the built-ins shipped with this crate.

use std::collections::BTreeMap;

use crate::diagnostic::did_you_mean;
use crate::model::{Document, TestWorkflowTemplate};
use crate::yaml::{LoadOptions, from_node, load_documents};

/// Where a template came from, shown in messages and `render` output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateOrigin {
    /// Shipped with this crate ([`TemplateSet::with_builtins`]).
    BuiltIn,
    /// Loaded from a file (the name as the caller gave it).
    File(String),
}

/// Templates by name.
///
/// Names are stored in the format's internal form (`official--k6--v1`) and
/// looked up both ways, so `use: [{name: official/k6/v1}]` and
/// `use: [{name: official--k6--v1}]` find the same template. Inserting a
/// template under a name that is already taken replaces it: callers insert
/// built-ins first, then a templates folder, then the workflow's own file, so
/// the closest definition wins.
///
/// ```
/// use testkube_core::resolve::TemplateSet;
/// let set = TemplateSet::with_builtins().expect("built-ins parse");
/// assert!(set.get("distribute/evenly").is_some());
/// assert!(set.get("distribute--evenly").is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    templates: BTreeMap<String, (TestWorkflowTemplate, TemplateOrigin)>,
}

/// A built-in template that does not parse: a bug in this crate, reported
/// instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("built-in template `{name}` is broken: {reason}")]
pub struct BuiltInTemplateError {
    /// Which built-in.
    pub name: &'static str,
    /// What the YAML parser said.
    pub reason: String,
}

/// The built-in templates: (file name, YAML text).
const BUILT_INS: &[(&str, &str)] = &[
    (
        "distribute/evenly",
        include_str!("builtin/distribute-evenly.yaml"),
    ),
    (
        "official/k6/v1",
        include_str!("builtin/official-k6-v1.yaml"),
    ),
];

impl TemplateSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        TemplateSet::default()
    }

    /// A set holding the built-in templates: `distribute/evenly` (spread
    /// parallel workers and service instances across nodes, as Testkube's
    /// own) and `official/k6/v1`.
    ///
    /// # Errors
    /// Only if a built-in does not parse, which the test suite rules out.
    pub fn with_builtins() -> Result<Self, BuiltInTemplateError> {
        let mut set = TemplateSet::new();
        for (name, text) in BUILT_INS {
            let template =
                parse_builtin(text).map_err(|reason| BuiltInTemplateError { name, reason })?;
            set.insert(template, TemplateOrigin::BuiltIn);
        }
        Ok(set)
    }

    /// Adds (or replaces) a template under its `metadata.name`; a template
    /// without a name is ignored. Returns the template it replaced.
    pub fn insert(
        &mut self,
        template: TestWorkflowTemplate,
        origin: TemplateOrigin,
    ) -> Option<(TestWorkflowTemplate, TemplateOrigin)> {
        let name = template.metadata.name.as_deref().map(internal_name)?;
        self.templates.insert(name, (template, origin))
    }

    /// Adds every `TestWorkflowTemplate` among `documents`, all with the
    /// same origin (e.g. the file they were loaded from). Returns how many.
    pub fn insert_documents<'d>(
        &mut self,
        documents: impl IntoIterator<Item = &'d Document>,
        origin: &TemplateOrigin,
    ) -> usize {
        let mut added = 0;
        for document in documents {
            if let Document::TestWorkflowTemplate(template) = document {
                self.insert((**template).clone(), origin.clone());
                added += 1;
            }
        }
        added
    }

    /// The template called `name` (`a/b` or `a--b`).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&TestWorkflowTemplate> {
        self.entry(name).map(|(template, _)| template)
    }

    /// Where the template called `name` came from.
    #[must_use]
    pub fn origin(&self, name: &str) -> Option<&TemplateOrigin> {
        self.entry(name).map(|(_, origin)| origin)
    }

    fn entry(&self, name: &str) -> Option<&(TestWorkflowTemplate, TemplateOrigin)> {
        self.templates.get(&internal_name(name.trim()))
    }

    /// Every template name, in the display form (`a/b`), sorted.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.templates.keys().map(|name| display_name(name))
    }

    /// The number of templates.
    #[must_use]
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether the set holds no template.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The known name `name` was most likely meant to be (display form).
    #[must_use]
    pub fn suggest(&self, name: &str) -> Option<String> {
        let names: Vec<String> = self.names().collect();
        did_you_mean(&display_name(name.trim()), names.iter().map(String::as_str))
            .map(str::to_owned)
    }
}

/// Parses one built-in with the same loader users' files go through.
fn parse_builtin(text: &str) -> Result<TestWorkflowTemplate, String> {
    let nodes = load_documents(text, &LoadOptions::default()).map_err(|err| err.to_string())?;
    let node = nodes.first().ok_or_else(|| "empty document".to_owned())?;
    match from_node::<TestWorkflowTemplate>(node) {
        (Some(template), diagnostics) if diagnostics.is_empty() => Ok(template),
        (_, diagnostics) => Err(diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// The stored form of a template name: `a/b` becomes `a--b`.
///
/// ```
/// use testkube_core::resolve::internal_name;
/// assert_eq!(internal_name("official/k6/v1"), "official--k6--v1");
/// ```
#[must_use]
pub fn internal_name(name: &str) -> String {
    name.replace('/', "--")
}

/// The form users write: `a--b` becomes `a/b`.
///
/// ```
/// use testkube_core::resolve::display_name;
/// assert_eq!(display_name("official--k6--v1"), "official/k6/v1");
/// ```
#[must_use]
pub fn display_name(name: &str) -> String {
    name.replace("--", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse_and_are_found_under_both_names() {
        let set = TemplateSet::with_builtins().expect("built-ins parse");
        let distribute = set.get("distribute/evenly").expect("distribute/evenly");
        let pod = distribute.spec.pod.as_ref().expect("pod config");
        assert_eq!(pod.topology_spread_constraints.len(), 1);
        assert_eq!(
            pod.topology_spread_constraints[0].topology_key,
            "kubernetes.io/hostname"
        );
        assert!(set.get("distribute--evenly").is_some());
        assert!(set.get("official/k6/v1").is_some());
        assert_eq!(
            set.origin("official--k6--v1"),
            Some(&TemplateOrigin::BuiltIn)
        );
        let names: Vec<String> = set.names().collect();
        assert_eq!(names, ["distribute/evenly", "official/k6/v1"]);
    }

    #[test]
    fn later_insert_wins_and_suggestions_use_display_names() {
        let mut set = TemplateSet::with_builtins().expect("built-ins parse");
        let mut mine = TestWorkflowTemplate::default();
        mine.metadata.name = Some("distribute/evenly".into());
        let replaced = set.insert(mine, TemplateOrigin::File("t.yaml".into()));
        assert!(replaced.is_some());
        assert_eq!(
            set.origin("distribute--evenly"),
            Some(&TemplateOrigin::File("t.yaml".into()))
        );
        assert_eq!(
            set.suggest("distribute/evnly"),
            Some("distribute/evenly".into())
        );
        assert_eq!(set.suggest("nothing-like-it"), None);
    }
}
