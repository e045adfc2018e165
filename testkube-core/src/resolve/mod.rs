//! Resolution: a workflow as written becomes the workflow that runs, with its
//! config values and templates applied.
//!
//! [`resolve_workflow`] does, in order:
//!
//! 1. binds the workflow's `config` parameters: passed values (e.g. from
//!    `--config k=v`) cast to the declared types and checked against the
//!    schema, defaults filled in, a missing required value or an unknown key
//!    reported (with "did you mean");
//! 2. partially evaluates every expression and `{{ }}` template of the
//!    workflow with `config.*`, `workflow.name` and `workflow.labels` known;
//!    what depends on the run (`execution.*`, `env.*`, worker variables, step
//!    results) stays as a simplified expression; a reference to an undeclared
//!    `config.x` is an error;
//! 3. applies templates (top-level `use`, step `use`, step `template`,
//!    service `use`, the same inside `parallel`), each evaluated with its own
//!    config first, merged by the rules of [`apply`](self#templates).
//!
//! The result has no `use` or `template` left. Problems come back as
//! [`Diagnostic`]s with field paths, and with source spans when the caller
//! passes the loaded YAML tree.
//!
//! # Templates
//! Templates come from a [`TemplateSet`]: the built-ins
//! ([`TemplateSet::with_builtins`]: `distribute/evenly`, `official/k6/v1`),
//! then whatever the caller inserts (a templates folder, the workflow's own
//! file). A name `a/b` is stored and found as `a--b` too. The merge rules are
//! Testkube's: the user's settings win over the template's field by field,
//! lists are appended (the template's first), maps merged; a template's
//! `setup`/`steps` run before the user's and its `after` after them.
//!
//! # Sensitive parameters
//! Values of parameters declared `sensitive: true` are never shown:
//! [`ResolvedWorkflow::config`] masks them as [`MASK`], diagnostics say "the
//! value (sensitive, not shown)" instead of echoing them, and with
//! [`ResolveOptions::mask_sensitive`] (previews such as `testkube render`)
//! they are not bound at all: every expression using one stays symbolic
//! (`{{ shellquote(config.token) }}`), which shows where the secret goes
//! without showing it or computing anything from a stand-in value.

mod apply;
mod config;
mod eval;
mod merge;
mod params;
mod problem;
pub(crate) mod simplify;
mod templates;

use indexmap::IndexMap;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::model::TestWorkflow;
use crate::yaml::{FieldPath, Node};

pub use config::MASK;
pub use templates::{
    BuiltInTemplateError, TemplateOrigin, TemplateSet, display_name, internal_name,
};

pub(crate) use eval::{ExprOutcome, Scope};
pub(crate) use merge::{dedupe_env as dedupe_env_vars, merge_container as merge_containers};
pub(crate) use problem::{Problem, to_diagnostics};

use apply::Applier;
use config::{Owner, bind};
use simplify::{Kind, Simplifier};

/// What to resolve a workflow with.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    config: IndexMap<String, Value>,
    mask_sensitive: bool,
}

impl ResolveOptions {
    /// No config values, sensitive values kept.
    #[must_use]
    pub fn new() -> Self {
        ResolveOptions::default()
    }

    /// Sets one config value. Strings are cast to the parameter's declared
    /// type (`"4"` for an integer parameter is `4`); the last value given for
    /// a key wins.
    #[must_use]
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Sets config values from `KEY=VALUE` pairs already split.
    #[must_use]
    pub fn with_config_pairs<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (key, value) in pairs {
            self.config.insert(key.into(), Value::String(value.into()));
        }
        self
    }

    /// Resolves for output people read: sensitive parameters are left
    /// unknown, so expressions that use them stay as expressions, and a
    /// sensitive default is shown as [`MASK`] (the values are still
    /// validated). Without it (the engine), the real values are used.
    #[must_use]
    pub fn mask_sensitive(mut self, mask: bool) -> Self {
        self.mask_sensitive = mask;
        self
    }
}

/// A workflow with its config and templates applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedWorkflow {
    workflow: TestWorkflow,
    config: IndexMap<String, Value>,
    warnings: Vec<Diagnostic>,
}

impl ResolvedWorkflow {
    /// The resolved workflow: no `use` or `template` left, expressions
    /// simplified.
    #[must_use]
    pub fn workflow(&self) -> &TestWorkflow {
        &self.workflow
    }

    /// The resolved workflow, owned.
    #[must_use]
    pub fn into_workflow(self) -> TestWorkflow {
        self.workflow
    }

    /// The config values in effect, in declaration order, sensitive ones
    /// masked; values only known at run time shown as `{{ }}` templates.
    #[must_use]
    pub fn config(&self) -> &IndexMap<String, Value> {
        &self.config
    }

    /// Warnings found while resolving.
    #[must_use]
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

/// Why a workflow could not be resolved: every problem found, errors and
/// warnings, each with a field path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", summary(.diagnostics))]
pub struct ResolveError {
    /// The problems, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

fn summary(diagnostics: &[Diagnostic]) -> String {
    match diagnostics.first() {
        Some(first) if diagnostics.len() == 1 => first.message().to_owned(),
        Some(first) => format!("{} (and {} more)", first.message(), diagnostics.len() - 1),
        None => "the workflow cannot be resolved".to_owned(),
    }
}

/// Resolves `workflow`: config bound, expressions simplified, templates
/// applied (see the module documentation).
///
/// `source` is the workflow's loaded YAML tree, used to give diagnostics a
/// line and column; pass `None` when the workflow did not come from a file.
///
/// # Errors
/// [`ResolveError`] with every problem found: missing or invalid config
/// values, unknown config keys, unknown templates, templates using templates,
/// expressions that do not evaluate, references to undeclared parameters.
pub fn resolve_workflow(
    workflow: &TestWorkflow,
    templates: &TemplateSet,
    options: &ResolveOptions,
    source: Option<&Node>,
) -> Result<ResolvedWorkflow, ResolveError> {
    let base = workflow_scope(workflow);
    let mut problems = Vec::new();
    let spec_path = FieldPath::new().child("spec");
    let bound = bind(
        &workflow.spec.config,
        &options.config,
        &base,
        Owner::Workflow,
        &spec_path.child("config"),
        &mut problems,
    );
    if problems.iter().any(Problem::is_error) {
        return Err(ResolveError {
            diagnostics: to_diagnostics(problems, source),
        });
    }

    let scope = bound.scope(base.clone(), options.mask_sensitive);
    let mut simplifier = Simplifier::new(&scope);
    let mut spec = workflow.spec.clone();
    let declarations = std::mem::take(&mut spec.config);
    let simplified = simplifier.typed(&spec, Kind::Spec, &spec_path);
    problems.extend(simplifier.into_problems());

    let mut applier = Applier::new(templates, &base, options.mask_sensitive);
    let resolved_spec = simplified.map(|spec| applier.spec(spec, &spec_path));
    problems.extend(applier.problems);

    match resolved_spec {
        Some(mut spec) if !problems.iter().any(Problem::is_error) => {
            spec.config = declarations;
            if options.mask_sensitive {
                // A sensitive default is a value too.
                for parameter in spec.config.values_mut() {
                    if parameter.sensitive == Some(true) && parameter.default.is_some() {
                        parameter.default = Some(Value::String(MASK.to_owned()));
                    }
                }
            }
            let mut resolved = workflow.clone();
            resolved.spec = spec;
            Ok(ResolvedWorkflow {
                workflow: resolved,
                config: bound.shown(),
                warnings: to_diagnostics(problems, source),
            })
        }
        _ => Err(ResolveError {
            diagnostics: to_diagnostics(problems, source),
        }),
    }
}

/// The template problems of `workflow`, as `testkube validate` reports them
/// before any config value is known: every top-level, step, service and
/// `parallel` `use`/`template` names a template of `templates`, gets each
/// required parameter of it and no parameter it does not declare, and the
/// template evaluates with those values. The workflow's own `config.*` stays
/// unknown (its values come with the run), so a value such as
/// `{{ config.version }}` passed to a template is not held against it.
///
/// The same [`Applier`] as [`resolve_workflow`] does the work, so the
/// messages are the ones `render`, `plan` and `run` give; the problems of
/// the workflow's own expressions are left to the validator's checks.
#[must_use]
pub fn check_templates(
    workflow: &TestWorkflow,
    templates: &TemplateSet,
    source: Option<&Node>,
) -> Vec<Diagnostic> {
    let base = workflow_scope(workflow);
    let mut applier = Applier::new(templates, &base, true);
    applier.spec(workflow.spec.clone(), &FieldPath::new().child("spec"));
    to_diagnostics(applier.problems, source)
}

/// An expression evaluated with nothing known (constants fold, the rest
/// stays); `None` when it does not parse or evaluate.
pub(crate) fn eval_expression_now(text: &str) -> Option<ExprOutcome> {
    eval::eval_expression(simplify::strip_braces(text), &Scope::new()).ok()
}

/// `workflow.name` and `workflow.labels`, known from the start.
fn workflow_scope(workflow: &TestWorkflow) -> Scope {
    let labels: serde_json::Map<String, Value> = workflow
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    let mut info = serde_json::Map::new();
    info.insert(
        "name".to_owned(),
        Value::String(workflow.metadata.name.clone().unwrap_or_default()),
    );
    info.insert("labels".to_owned(), Value::Object(labels));
    Scope::new().with("workflow", Value::Object(info))
}
