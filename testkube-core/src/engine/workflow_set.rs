//! [`WorkflowSet`]: a ready [`ChildExecutions`] over workflows already
//! parsed, and [`selector_matches`], the label-selector rule `execute`
//! uses to find workflows by labels.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::children::{ChildError, ChildExecutions, ChildRequest, ChildTarget, PreparedChild};
use super::mask::sensitive_config_values;
use super::run::ExecutionRequest;
use crate::model::TestWorkflow;
use crate::plan::{PlanOptions, plan_workflow};
use crate::resolve::{ResolveOptions, TemplateSet, resolve_workflow};

/// A [`ChildExecutions`] over workflows already parsed: finds them by name
/// or labels, resolves them with a [`TemplateSet`] and plans them. It
/// records nothing; children are numbered per workflow from 1 and get the
/// id `<parent id>-<step>-<n>`.
pub struct WorkflowSet {
    workflows: BTreeMap<String, TestWorkflow>,
    templates: TemplateSet,
    plan_options: PlanOptions,
    numbers: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for WorkflowSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowSet")
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("templates", &self.templates.len())
            .finish_non_exhaustive()
    }
}

impl WorkflowSet {
    /// An empty set resolving templates from `templates`.
    #[must_use]
    pub fn new(templates: TemplateSet) -> Self {
        WorkflowSet {
            workflows: BTreeMap::new(),
            templates,
            plan_options: PlanOptions::new(),
            numbers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Plans children with `options` (e.g. duration history for sharding).
    #[must_use]
    pub fn with_plan_options(mut self, options: PlanOptions) -> Self {
        self.plan_options = options;
        self
    }

    /// Adds a workflow.
    ///
    /// # Errors
    /// [`ChildError`] when it has no name, or another workflow of the set
    /// has the same name.
    pub fn insert(&mut self, workflow: TestWorkflow) -> Result<(), ChildError> {
        let Some(name) = workflow.metadata.name.clone().filter(|n| !n.is_empty()) else {
            return Err(ChildError::new(
                "a workflow without `metadata.name` cannot be executed by name: give it one",
            ));
        };
        if self.workflows.contains_key(&name) {
            return Err(ChildError::new(format!(
                "two workflows are named `{name}`: rename one so `execute` knows which to run"
            )));
        }
        self.workflows.insert(name, workflow);
        Ok(())
    }

    /// The names of the workflows, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.workflows.keys().map(String::as_str)
    }
}

#[async_trait]
impl ChildExecutions for WorkflowSet {
    fn find(&self, target: ChildTarget<'_>) -> Result<Vec<String>, ChildError> {
        match target {
            ChildTarget::Name(name) => {
                if self.workflows.contains_key(name) {
                    Ok(vec![name.to_owned()])
                } else {
                    let known: Vec<&str> = self.names().collect();
                    Err(ChildError::new(format!(
                        "no workflow named `{name}` to execute (known: {}); pass the file or \
                         folder that defines it",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )))
                }
            }
            ChildTarget::Selector(selector) => {
                let mut found = Vec::new();
                for (name, workflow) in &self.workflows {
                    let labels = workflow.metadata.labels.clone().unwrap_or_default();
                    if selector_matches(selector, &labels)? {
                        found.push(name.clone());
                    }
                }
                Ok(found)
            }
        }
    }

    fn prepare(&self, child: &ChildRequest) -> Result<PreparedChild, ChildError> {
        let name = &child.workflow;
        let workflow = self
            .workflows
            .get(name)
            .ok_or_else(|| ChildError::new(format!("no workflow named `{name}` to execute")))?;
        let options = child
            .config
            .iter()
            .fold(ResolveOptions::new(), |options, (key, value)| {
                options.with_config(key.clone(), value.clone())
            });
        let resolved = resolve_workflow(workflow, &self.templates, &options, None)
            .map_err(|err| ChildError::new(format!("cannot resolve workflow `{name}`: {err}")))?;
        let plan = plan_workflow(resolved.workflow(), &self.plan_options).map_err(|err| {
            let first = err
                .diagnostics
                .first()
                .map(|d| format!(": {}", d.message()))
                .unwrap_or_default();
            ChildError::new(format!("cannot plan workflow `{name}`{first}"))
        })?;
        let passed: Vec<(String, String)> = child
            .config
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => (key.clone(), text.clone()),
                other => (key.clone(), other.to_string()),
            })
            .collect();
        let request = ExecutionRequest {
            config: resolved
                .config()
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            labels: workflow.metadata.labels.clone().unwrap_or_default(),
            secrets: sensitive_config_values(&workflow.spec.config, passed),
            ..ExecutionRequest::new("")
        };
        Ok(PreparedChild { plan, request })
    }

    async fn register(
        &self,
        child: &ChildRequest,
        prepared: &mut PreparedChild,
    ) -> Result<(), ChildError> {
        let mut numbers = self
            .numbers
            .lock()
            .map_err(|_| ChildError::new("the workflow set's numbering failed earlier"))?;
        let number = numbers.entry(child.workflow.clone()).or_insert(0);
        *number += 1;
        prepared.request.number = *number;
        Ok(())
    }
}

/// Whether `labels` match `selector` (`matchLabels` and
/// `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`, all
/// ANDed; an empty selector matches everything, as in Kubernetes).
///
/// # Errors
/// [`ChildError`] for an unknown operator.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, ChildError> {
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Ok(false);
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let value = labels.get(&requirement.key);
        let values = requirement.values.as_deref().unwrap_or_default();
        let matches = match requirement.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => {
                return Err(ChildError::new(format!(
                    "unknown selector operator `{other}` for label `{}`: use In, NotIn, Exists \
                     or DoesNotExist",
                    requirement.key
                )));
            }
        };
        if !matches {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("suite", "api")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(vec!["slow".to_owned()]),
            }]),
        };
        let matches = |pairs| selector_matches(&selector, &labels(pairs)).unwrap();
        assert!(matches(&[("suite", "api")]));
        assert!(matches(&[("suite", "api"), ("tier", "fast")]));
        assert!(!matches(&[("suite", "api"), ("tier", "slow")]));
        assert!(!matches(&[("suite", "ui")]));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])).unwrap());
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".to_owned(),
                operator: "Near".to_owned(),
                values: None,
            }]),
            ..LabelSelector::default()
        };
        let err = selector_matches(&bad, &labels(&[])).unwrap_err();
        assert!(err.message.contains("Near"), "{err}");
    }
}
