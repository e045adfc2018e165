//! Helpers the executor integration tests share: a workflow from its
//! `spec`, its plan, the executors to run it with, and a step of a summary.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

use testkube_core::engine::{ExecutionSummary, StepSummary};
use testkube_core::model::Document;
use testkube_core::resolve::TemplateOrigin;
use testkube_core::{LoadOptions, PlanOptions, ResolveOptions, TemplateSet};
use testkube_executors::{LocalExecutor, Sandbox};

/// A TestWorkflow named `t` with `spec` (YAML lines under `spec:`).
pub(crate) fn workflow(spec: &str) -> String {
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: t}}\nspec:\n{spec}"
    )
}

/// The plan of the first workflow of `yaml`.
pub(crate) fn plan(yaml: &str) -> testkube_core::Plan {
    plan_with(yaml, &[])
}

/// The plan of the first workflow of `yaml`, with `config` values and the
/// templates of `yaml`.
pub(crate) fn plan_with(yaml: &str, config: &[(&str, &str)]) -> testkube_core::Plan {
    let file = testkube_core::load_file("test.yaml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    let workflow = file
        .documents
        .iter()
        .find_map(|doc| match &doc.document {
            Some(Document::TestWorkflow(workflow)) => Some(workflow),
            _ => None,
        })
        .expect("a workflow");
    let mut templates = TemplateSet::with_builtins().unwrap();
    let documents = file
        .documents
        .iter()
        .filter_map(|doc| doc.document.as_ref());
    templates.insert_documents(documents, &TemplateOrigin::File("test.yaml".to_owned()));
    let options = config
        .iter()
        .fold(ResolveOptions::new(), |options, (key, value)| {
            options.with_config(*key, *value)
        });
    let resolved = testkube_core::resolve_workflow(workflow, &templates, &options, None).unwrap();
    testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new()).unwrap()
}

/// The executors to test with: plain processes, bubblewrap when installed,
/// and the sandbox built without it (user namespaces) where the kernel
/// allows it.
pub(crate) fn executors(dir: &Path) -> Vec<LocalExecutor> {
    let mut found = vec![LocalExecutor::new(dir.join("plain")).with_sandbox(Sandbox::Off)];
    found.extend(sandboxes(dir));
    found
}

/// The sandboxes this machine can build: bubblewrap's, and the one made
/// with `unshare` as if bubblewrap were not installed.
pub(crate) fn sandboxes(dir: &Path) -> Vec<LocalExecutor> {
    let bwrap = LocalExecutor::new(dir.join("sandboxed"));
    let unshare = LocalExecutor::new(dir.join("unshare")).with_sandbox(Sandbox::Unshare);
    [bwrap, unshare]
        .into_iter()
        .filter(LocalExecutor::is_sandboxed)
        .collect()
}

/// Step `id` of the root worker.
pub(crate) fn step<'a>(summary: &'a ExecutionSummary, id: &str) -> &'a StepSummary {
    summary.workers[0]
        .steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id} in {summary:#?}"))
}
