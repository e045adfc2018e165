//! Semantic checks of a workflow or template spec: the step tree, parallel
//! workers, services, schedules and limits. Also records where the
//! whole-expression fields are, for the expression checks.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::expressions::{ConfigScope, ExpressionSite, WorkflowFacts};
use super::parts::{self, check_duration, positive_seconds};
use super::report::Report;
use super::rules;
use super::schedule;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{
    Concurrency, ContainerConfig, Content, Duration, DynamicList, Event, Execute, IntOrExpr,
    JobConfig, Parallel, ParameterSchema, PodConfig, Service, Step, TemplateRef, Timeouts,
    WorkerStrategy, WorkflowSpec, has_template,
};
use crate::plan::derive_step_id;
use crate::yaml::{FieldPath, NodeValue, PathSeg};

/// Checks the spec of a workflow (or, with `is_template`, of a template).
pub(crate) fn check_workflow_spec(
    report: &mut Report<'_>,
    spec: &WorkflowSpec,
    is_template: bool,
) -> WorkflowFacts {
    let mut checks = SpecChecks {
        report,
        is_template,
        facts: WorkflowFacts {
            expressions: Vec::new(),
            scopes: Vec::new(),
            step_ids: std::collections::BTreeSet::new(),
        },
    };
    checks.spec(
        &FieldPath::new().child("spec"),
        &SpecRefs::of_workflow(spec),
        None,
    );
    checks.facts
}

/// The workflow-spec fields, borrowed from a [`WorkflowSpec`] or a [`Parallel`] block.
struct SpecRefs<'s> {
    use_templates: &'s [TemplateRef],
    config: &'s IndexMap<String, ParameterSchema>,
    content: Option<&'s Content>,
    container: Option<&'s ContainerConfig>,
    job: Option<&'s JobConfig>,
    pod: Option<&'s PodConfig>,
    services: &'s IndexMap<String, Service>,
    groups: [(&'static str, &'s [Step]); 3],
    events: &'s [Event],
    concurrency: Option<&'s Concurrency>,
    timeouts: Option<&'s Timeouts>,
}

impl<'s> SpecRefs<'s> {
    fn of_workflow(spec: &'s WorkflowSpec) -> Self {
        SpecRefs {
            use_templates: &spec.use_templates,
            config: &spec.config,
            content: spec.content.as_ref(),
            container: spec.container.as_ref(),
            job: spec.job.as_ref(),
            pod: spec.pod.as_ref(),
            services: &spec.services,
            groups: [
                ("setup", &spec.setup),
                ("steps", &spec.steps),
                ("after", &spec.after),
            ],
            events: &spec.events,
            concurrency: spec.concurrency.as_ref(),
            timeouts: spec.timeouts.as_ref(),
        }
    }

    fn of_parallel(parallel: &'s Parallel) -> Self {
        SpecRefs {
            use_templates: &parallel.use_templates,
            config: &parallel.config,
            content: parallel.content.as_ref(),
            container: parallel.container.as_ref(),
            job: parallel.job.as_ref(),
            pod: parallel.pod.as_ref(),
            services: &parallel.services,
            groups: [
                ("setup", &parallel.setup),
                ("steps", &parallel.steps),
                ("after", &parallel.after),
            ],
            events: &parallel.events,
            concurrency: parallel.concurrency.as_ref(),
            timeouts: parallel.timeouts.as_ref(),
        }
    }
}

/// Explicit step ids seen in one workflow (a parallel worker is a workflow
/// of its own), with where each was first used.
type StepIds = HashMap<String, FieldPath>;

struct SpecChecks<'r, 'a> {
    report: &'r mut Report<'a>,
    is_template: bool,
    facts: WorkflowFacts,
}

impl SpecChecks<'_, '_> {
    fn spec(&mut self, path: &FieldPath, spec: &SpecRefs<'_>, parent_scope: Option<usize>) {
        let scope = self.open_scope(path, spec, parent_scope);
        self.template_refs(&path.child("use"), spec.use_templates);
        super::params::check_parameters(self.report, &path.child("config"), spec.config);
        if let Some(content) = spec.content {
            parts::check_content(self.report, &path.child("content"), content);
        }
        if let Some(container) = spec.container {
            parts::check_container(self.report, &path.child("container"), container);
        }
        if let Some(job) = spec.job {
            positive_seconds(self.report, &path.child("job"), job.active_deadline_seconds);
        }
        if let Some(pod) = spec.pod {
            positive_seconds(self.report, &path.child("pod"), pod.active_deadline_seconds);
        }
        self.services(&path.child("services"), spec.services, scope);
        let mut ids = StepIds::new();
        for (group, steps) in spec.groups {
            for (index, step) in steps.iter().enumerate() {
                self.step(&path.child(group).child(index), step, &mut ids, scope);
            }
        }
        for (index, event) in spec.events.iter().enumerate() {
            schedule::check_event(
                self.report,
                &path.child("events").child(index),
                event,
                self.facts.scopes.get(scope),
            );
        }
        if let Some(concurrency) = spec.concurrency {
            self.int_at_least(
                &path.child("concurrency").child("max"),
                concurrency.max.as_ref(),
                0,
                scope,
            );
        }
        if let Some(timeouts) = spec.timeouts {
            let timeouts_path = path.child("timeouts");
            self.duration(&timeouts_path.child("queue"), timeouts.queue.as_ref());
            self.duration(
                &timeouts_path.child("initialization"),
                timeouts.initialization.as_ref(),
            );
        }
    }

    fn open_scope(
        &mut self,
        path: &FieldPath,
        spec: &SpecRefs<'_>,
        parent: Option<usize>,
    ) -> usize {
        let (mut names, parent_complete) = match parent.and_then(|i| self.facts.scopes.get(i)) {
            Some(parent) => (parent.names.clone(), parent.complete),
            None => (Vec::new(), true),
        };
        names.extend(spec.config.keys().cloned());
        self.facts.scopes.push(ConfigScope {
            path: path.clone(),
            names,
            complete: parent_complete && !self.is_template && spec.use_templates.is_empty(),
        });
        self.facts.scopes.len() - 1
    }

    fn step(&mut self, path: &FieldPath, step: &Step, ids: &mut StepIds, scope: usize) {
        if does_nothing(step) && !self.has_other_keys(path, STEP_CONTROL_KEYS) {
            self.report.at(
                path,
                Diagnostic::warning("empty-step", "this step does nothing")
                    .with_hint("add `shell`, `run`, `execute`, `parallel`, `steps`, `template` or `artifacts`; check the indentation of its fields"),
            );
        }
        match (&step.id, &step.name) {
            (Some(id), _) => self.step_id(&path.child("id"), id, ids),
            // The id the planner derives from the name is a variable too
            // (`condition: checks` for a step named "Checks").
            (None, Some(name)) => {
                self.facts.step_ids.insert(derive_step_id(name));
            }
            (None, None) => {}
        }
        self.expression(
            &path.child("condition"),
            step.condition.as_ref().map(|c| c.as_str()),
            scope,
        );
        if let Some(retry) = &step.retry {
            let retry_path = path.child("retry");
            self.int_at_least(&retry_path.child("count"), Some(&retry.count), 1, scope);
            self.expression(
                &retry_path.child("until"),
                retry.until.as_ref().map(|u| u.as_str()),
                scope,
            );
        }
        self.duration(&path.child("timeout"), step.timeout.as_ref());
        self.duration(&path.child("delay"), step.delay.as_ref());
        self.template_refs(&path.child("use"), &step.use_templates);
        if let Some(template) = &step.template {
            self.template_ref(&path.child("template"), template);
        }
        if let Some(content) = &step.content {
            parts::check_content(self.report, &path.child("content"), content);
        }
        self.services(&path.child("services"), &step.services, scope);
        if let Some(container) = &step.container {
            parts::check_container(self.report, &path.child("container"), container);
        }
        for (index, child) in step.setup.iter().enumerate() {
            self.step(&path.child("setup").child(index), child, ids, scope);
        }
        self.operations(
            path,
            step.shell.as_deref(),
            step.run.as_ref(),
            step.execute.as_ref(),
            scope,
        );
        if let Some(artifacts) = &step.artifacts {
            parts::check_artifacts(self.report, &path.child("artifacts"), artifacts);
        }
        if let Some(cache) = &step.cache {
            parts::check_cache(self.report, &path.child("cache"), cache);
        }
        if let Some(parallel) = &step.parallel {
            self.parallel(&path.child("parallel"), parallel, scope);
        }
        for (index, child) in step.steps.iter().enumerate() {
            self.step(&path.child("steps").child(index), child, ids, scope);
        }
    }

    /// `shell`, `run` and `execute`, on a step or a parallel block.
    fn operations(
        &mut self,
        path: &FieldPath,
        shell: Option<&str>,
        run: Option<&crate::model::StepRun>,
        execute: Option<&Execute>,
        scope: usize,
    ) {
        if let Some(run) = run {
            parts::check_run(self.report, &path.child("run"), shell, run);
        }
        if let Some(execute) = execute {
            self.execute(&path.child("execute"), execute, scope);
        }
    }

    fn parallel(&mut self, path: &FieldPath, parallel: &Parallel, scope: usize) {
        self.int_at_least(
            &path.child("parallelism"),
            parallel.parallelism.as_ref(),
            1,
            scope,
        );
        self.strategy(path, parallel.strategy(), scope);
        if let Some(balance) = &parallel.balance {
            self.balance(path, parallel, balance);
        }
        self.expression(
            &path.child("logs"),
            parallel.logs.as_ref().map(|l| l.as_str()),
            scope,
        );
        for (field, froms) in [
            (
                "transfer",
                parallel
                    .transfer
                    .iter()
                    .map(|t| t.from.as_str())
                    .collect::<Vec<_>>(),
            ),
            (
                "fetch",
                parallel.fetch.iter().map(|f| f.from.as_str()).collect(),
            ),
        ] {
            for (index, from) in froms.into_iter().enumerate() {
                if from.trim().is_empty() {
                    self.report.at(
                        &path.child(field).child(index).child("from"),
                        Diagnostic::error("empty-value", format!("`{field}[].from` is empty"))
                            .with_hint("set the directory to copy files from"),
                    );
                }
            }
        }
        if let Some(retry) = &parallel.retry {
            self.int_at_least(
                &path.child("retry").child("count"),
                Some(&retry.count),
                1,
                scope,
            );
            self.expression(
                &path.child("retry").child("until"),
                retry.until.as_ref().map(|u| u.as_str()),
                scope,
            );
        }
        self.duration(&path.child("timeout"), parallel.timeout.as_ref());
        self.duration(&path.child("delay"), parallel.delay.as_ref());
        self.operations(
            path,
            parallel.shell.as_deref(),
            parallel.run.as_ref(),
            parallel.execute.as_ref(),
            scope,
        );
        if let Some(artifacts) = &parallel.artifacts {
            parts::check_artifacts(self.report, &path.child("artifacts"), artifacts);
        }
        if let Some(cache) = &parallel.cache {
            parts::check_cache(self.report, &path.child("cache"), cache);
        }
        if let Some(template) = &parallel.template {
            self.template_ref(&path.child("template"), template);
        }
        self.spec(path, &SpecRefs::of_parallel(parallel), Some(scope));
    }

    fn balance(&mut self, path: &FieldPath, parallel: &Parallel, balance: &crate::model::Balance) {
        let balance_path = path.child("balance");
        if parallel.shards.is_empty() {
            self.report.at_key(
                &balance_path,
                Diagnostic::error("balance-without-shards", "`balance` needs `shards` to balance")
                    .with_hint("list the items to split under `shards`, e.g. `shards: {file: 'glob(\"tests/*.py\")'}`"),
            );
        } else if let Some(key) = &balance.key
            && !parallel.shards.contains_key(key)
        {
            let keys = parallel.shards.keys().map(String::as_str);
            let hint = match did_you_mean(key, keys.clone()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("`shards` has: {}", keys.collect::<Vec<_>>().join(", ")),
            };
            self.report.at(
                &balance_path.child("key"),
                Diagnostic::error(
                    "unknown-shard-key",
                    format!("`balance.key` `{key}` is not a key of `shards`"),
                )
                .with_hint(hint),
            );
        }
        self.duration(&balance_path.child("default"), balance.default.as_ref());
    }

    fn services(&mut self, path: &FieldPath, services: &IndexMap<String, Service>, scope: usize) {
        for (name, service) in services {
            let service_path = path.child(name.as_str());
            self.strategy(&service_path, service.strategy(), scope);
            self.expression(
                &service_path.child("logs"),
                service.logs.as_ref().map(|l| l.as_str()),
                scope,
            );
            self.duration(&service_path.child("timeout"), service.timeout.as_ref());
            self.template_refs(&service_path.child("use"), &service.use_templates);
            parts::check_service(self.report, &service_path, service);
        }
    }

    fn execute(&mut self, path: &FieldPath, execute: &Execute, scope: usize) {
        self.int_at_least(
            &path.child("parallelism"),
            execute.parallelism.as_ref(),
            1,
            scope,
        );
        if execute.workflows.is_empty() {
            self.report.at_key(
                path,
                Diagnostic::error("empty-execute", "`execute` has no `workflows` to run")
                    .with_hint("add `workflows: [{name: other-workflow}]`"),
            );
        }
        for (index, workflow) in execute.workflows.iter().enumerate() {
            let item = path.child("workflows").child(index);
            match (&workflow.name, &workflow.selector) {
                (None, None) => self.report.at(
                    &item,
                    Diagnostic::error("missing-field", "`execute.workflows[]` needs a `name` or a `selector`")
                        .with_hint("name the workflow to run, or select workflows by labels with `selector.matchLabels`"),
                ),
                (Some(_), Some(_)) => self.report.at_key(
                    &item.child("selector"),
                    Diagnostic::error("conflicting-fields", "`execute.workflows[]` has both `name` and `selector`")
                        .with_hint("use `name` for one workflow or `selector` for a group, not both"),
                ),
                (Some(name), None) if !has_template(name) => {
                    if let Err(reason) = rules::dns1123_subdomain(name) {
                        self.report.at(
                            &item.child("name"),
                            Diagnostic::error("invalid-name", format!("invalid workflow name `{name}`: {reason}"))
                                .with_hint("workflow names are lower-case letters, digits and `-`"),
                        );
                    }
                }
                _ => {}
            }
            self.strategy(&item, workflow.strategy(), scope);
        }
    }

    fn strategy(&mut self, path: &FieldPath, strategy: WorkerStrategy<'_>, scope: usize) {
        self.int_at_least(&path.child("count"), strategy.count, 0, scope);
        self.int_at_least(&path.child("maxCount"), strategy.max_count, 0, scope);
        for (field, lists) in [("matrix", strategy.matrix), ("shards", strategy.shards)] {
            for (key, list) in lists {
                if let DynamicList::Expression(text) = list {
                    self.expression(&path.child(field).child(key.as_str()), Some(text), scope);
                }
            }
        }
    }

    fn step_id(&mut self, path: &FieldPath, id: &str, ids: &mut StepIds) {
        if !rules::is_step_id(id) {
            self.report.at(
                path,
                Diagnostic::error(
                    "invalid-step-id",
                    format!("invalid step id `{id}`: use only lower-case letters, digits and `_`"),
                )
                .with_hint(format!("try `{}`", rules::suggest_step_id(id))),
            );
            return;
        }
        if let Some(first) = ids.get(id) {
            let first = first.clone();
            self.report.at(
                path,
                Diagnostic::error(
                    "duplicate-step-id",
                    format!("step id `{id}` is used twice in this workflow"),
                )
                .with_hint(format!("first used at `{first}`; step ids must be unique")),
            );
        } else {
            ids.insert(id.to_owned(), path.clone());
        }
        self.facts.step_ids.insert(id.to_owned());
    }

    fn template_refs(&mut self, path: &FieldPath, refs: &[TemplateRef]) {
        for (index, template) in refs.iter().enumerate() {
            self.template_ref(&path.child(index), template);
        }
    }

    fn template_ref(&mut self, path: &FieldPath, template: &TemplateRef) {
        if self.is_template {
            self.report.at_key(
                path,
                Diagnostic::error(
                    "template-uses-template",
                    "a TestWorkflowTemplate cannot include other templates",
                )
                .with_hint("move the `use`/`template` into the workflows that use this template"),
            );
        }
        if template.name.trim().is_empty() {
            self.report.at(
                &path.child("name"),
                Diagnostic::error("empty-template-name", "the template name is empty").with_hint(
                    "name a TestWorkflowTemplate, e.g. `official/k6/v1` or `distribute/evenly`",
                ),
            );
        }
    }

    /// Whether the mapping at `path` has a key outside `keys` (e.g. an
    /// unknown field, already reported), so that follow-up warnings would
    /// only repeat the problem.
    fn has_other_keys(&self, path: &FieldPath, keys: &[&str]) -> bool {
        match self.report.node(path).map(|node| &node.value) {
            Some(NodeValue::Map(entries)) => entries
                .iter()
                .any(|(key, _)| key.as_str().is_none_or(|key| !keys.contains(&key))),
            _ => false,
        }
    }

    fn duration(&mut self, path: &FieldPath, duration: Option<&Duration>) {
        if let Some(duration) = duration {
            check_duration(self.report, path, duration);
        }
    }

    /// A literal integer must be at least `min`; an expression is recorded.
    fn int_at_least(
        &mut self,
        path: &FieldPath,
        value: Option<&IntOrExpr>,
        min: i64,
        scope: usize,
    ) {
        match value {
            Some(IntOrExpr::Int(n)) if *n < min => {
                let field = match path.segments().last() {
                    Some(PathSeg::Key(key)) => key.clone(),
                    _ => path.to_string(),
                };
                self.report.at(
                    path,
                    Diagnostic::error(
                        "out-of-range",
                        format!("`{field}` must be at least {min}, found {n}"),
                    )
                    .with_hint(format!("set `{field}` to {min} or more")),
                );
            }
            Some(IntOrExpr::Expr(text)) => self.expression(path, Some(text), scope),
            _ => {}
        }
    }

    fn expression(&mut self, path: &FieldPath, text: Option<&str>, scope: usize) {
        if let Some(text) = text {
            self.facts.expressions.push(ExpressionSite {
                path: path.clone(),
                text: text.to_owned(),
                scope,
            });
        }
    }
}

/// Step fields that configure a step without making it do anything.
const STEP_CONTROL_KEYS: &[&str] = &[
    "id",
    "name",
    "condition",
    "pure",
    "negative",
    "optional",
    "paused",
    "retry",
    "timeout",
    "container",
    "workingDir",
];

/// Whether a step has no operation, no children and nothing that could add
/// them (templates).
fn does_nothing(step: &Step) -> bool {
    step.shell.is_none()
        && step.run.is_none()
        && step.execute.is_none()
        && step.parallel.is_none()
        && step.artifacts.is_none()
        && step.template.is_none()
        && step.use_templates.is_empty()
        && step.steps.is_empty()
        && step.setup.is_empty()
        && step.content.is_none()
        && step.services.is_empty()
        && step.delay.is_none()
}
