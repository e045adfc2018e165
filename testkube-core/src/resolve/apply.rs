//! Applying templates: top-level `use`, step `use`, step `template`,
//! service `use` and the same inside `parallel`, where Testkube's resolver
//! puts them (`testworkflowresolver/apply.go`).
//!
//! - Top-level `use`: the template's pod, job, content, container, services,
//!   events, execution, concurrency, pvcs, system and timeouts merge under the
//!   workflow's ([`super::merge`]); its `setup` and `steps` go before the
//!   workflow's, its `after` after the workflow's. With several templates the
//!   first one listed ends up outermost.
//! - Step `use`: the template's content, services and container merge under
//!   the step's; its `setup` goes before the step's setup, its `steps` before
//!   the step's steps and its `after` after them.
//! - Step `template`: the template becomes sub-steps at the front of the
//!   step's `steps`: inlined when it brings no container, content, working
//!   directory or services, otherwise wrapped in one group step carrying them.
//! - Service `use`: pod, content, container and pvcs merge; such a template
//!   may not hold steps or services.
//!
//! Each template is evaluated with its own config (passed values cast and
//! checked, defaults filled in) before it is merged, so the workflow's
//! `config.*` and the template's never mix. Templates cannot use templates.

use std::mem::take;

use super::config::{Owner, bind};
use super::eval::Scope;
use super::merge::{
    merge_concurrency, merge_container, merge_content, merge_execution, merge_job, merge_map,
    merge_pod, merge_system, merge_timeouts,
};
use super::problem::Problem;
use super::simplify::{Kind, Simplifier};
use super::templates::{TemplateSet, display_name};
use crate::model::{Parallel, Service, Step, TemplateRef, WorkflowSpec};
use crate::yaml::FieldPath;

/// Applies templates, collecting problems.
pub(crate) struct Applier<'a> {
    templates: &'a TemplateSet,
    /// What templates may refer to besides their own config (`workflow.*`).
    base: &'a Scope,
    mask: bool,
    pub(crate) problems: Vec<Problem>,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(templates: &'a TemplateSet, base: &'a Scope, mask: bool) -> Self {
        Applier {
            templates,
            base,
            mask,
            problems: Vec::new(),
        }
    }

    /// A workflow spec (or a parallel worker's) with every template applied.
    pub(crate) fn spec(&mut self, mut spec: WorkflowSpec, path: &FieldPath) -> WorkflowSpec {
        // The workflow's own steps first, while their paths are still the
        // ones written in the file.
        spec.setup = self.steps(take(&mut spec.setup), &path.child("setup"));
        spec.steps = self.steps(take(&mut spec.steps), &path.child("steps"));
        spec.after = self.steps(take(&mut spec.after), &path.child("after"));
        self.services(&mut spec.services, path);
        let uses = take(&mut spec.use_templates);
        for (index, reference) in uses.iter().enumerate().rev() {
            let use_path = path.child("use").child(index);
            if let Some(template) = self.build(reference, &use_path) {
                inject_spec(&mut spec, template);
            }
        }
        spec.setup = flatten(take(&mut spec.setup));
        spec.steps = flatten(take(&mut spec.steps));
        spec.after = flatten(take(&mut spec.after));
        spec
    }

    fn steps(&mut self, steps: Vec<Step>, path: &FieldPath) -> Vec<Step> {
        steps
            .into_iter()
            .enumerate()
            .map(|(index, step)| self.step(step, &path.child(index)))
            .collect()
    }

    fn services(&mut self, services: &mut indexmap::IndexMap<String, Service>, path: &FieldPath) {
        for (name, service) in services.iter_mut() {
            let service_path = path.child("services").child(name.as_str());
            let uses = take(&mut service.use_templates);
            for (index, reference) in uses.iter().enumerate().rev() {
                let use_path = service_path.child("use").child(index);
                let Some(template) = self.build(reference, &use_path) else {
                    continue;
                };
                if !(template.setup.is_empty()
                    && template.steps.is_empty()
                    && template.after.is_empty())
                {
                    self.problems.push(
                        Problem::error(
                            "template-not-for-service",
                            format!(
                                "template `{}` has steps: a service can only use templates \
                                 without steps",
                                reference.name
                            ),
                            &use_path,
                        )
                        .with_hint("use it on a step instead"),
                    );
                    continue;
                }
                if !template.services.is_empty() {
                    self.problems.push(
                        Problem::error(
                            "template-not-for-service",
                            format!(
                                "template `{}` defines services: a service cannot start other \
                                 services",
                                reference.name
                            ),
                            &use_path,
                        )
                        .with_hint("use it on a step instead"),
                    );
                    continue;
                }
                inject_service(service, template);
            }
        }
    }

    fn step(&mut self, mut step: Step, path: &FieldPath) -> Step {
        step.setup = self.steps(take(&mut step.setup), &path.child("setup"));
        step.steps = self.steps(take(&mut step.steps), &path.child("steps"));
        self.services(&mut step.services, path);
        if let Some(parallel) = step.parallel.take() {
            step.parallel = Some(Box::new(self.parallel(*parallel, &path.child("parallel"))));
        }
        let uses = take(&mut step.use_templates);
        for (index, reference) in uses.iter().enumerate().rev() {
            if let Some(template) = self.build(reference, &path.child("use").child(index)) {
                inject_step(&mut step, template);
            }
        }
        if let Some(reference) = step.template.take()
            && let Some(template) = self.build(&reference, &path.child("template"))
        {
            let mut isolated = Step::default();
            inject_step(&mut isolated, template);
            if !(isolated.setup.is_empty() && isolated.steps.is_empty()) {
                let carries_settings = isolated.container.is_some()
                    || isolated.content.is_some()
                    || isolated.working_dir.is_some()
                    || !isolated.services.is_empty();
                let mut front = if carries_settings {
                    vec![isolated]
                } else {
                    let mut inlined = take(&mut isolated.setup);
                    inlined.append(&mut isolated.steps);
                    inlined
                };
                front.append(&mut step.steps);
                step.steps = front;
            }
        }
        step
    }

    fn parallel(&mut self, mut parallel: Parallel, path: &FieldPath) -> Parallel {
        // A `template` on the block runs, with the block's own step
        // controls and operations, as the workers' first step.
        let first = parallel.template.take().map(|template| Step {
            negative: parallel.negative.take(),
            optional: parallel.optional.take(),
            retry: parallel.retry.take(),
            timeout: parallel.timeout.take(),
            delay: parallel.delay.take(),
            shell: parallel.shell.take(),
            run: parallel.run.take(),
            execute: parallel.execute.take(),
            artifacts: parallel.artifacts.take(),
            cache: parallel.cache.take(),
            template: Some(template),
            ..Step::default()
        });
        let mut spec = self.spec(parallel.worker_spec(), path);
        if let Some(first) = first {
            let first = self.step(first, path);
            let mut steps = flatten(vec![first]);
            steps.append(&mut spec.steps);
            spec.steps = steps;
        }
        set_worker_spec(&mut parallel, spec);
        parallel
    }

    /// The template `reference` names, evaluated with its config, ready to
    /// merge (its own `config` declarations removed).
    fn build(&mut self, reference: &TemplateRef, path: &FieldPath) -> Option<WorkflowSpec> {
        let name_path = path.child("name");
        let Some(template) = self.templates.get(&reference.name) else {
            self.problems.push(unknown_template(
                &reference.name,
                self.templates,
                &name_path,
            ));
            return None;
        };
        let shown = display_name(&reference.name);
        if let Some((inner_path, inner)) = nested_use(&template.spec) {
            self.problems.push(
                Problem::error(
                    "template-uses-template",
                    format!(
                        "template `{shown}` uses template `{inner}` at `{inner_path}`: templates \
                         cannot use other templates"
                    ),
                    &name_path,
                )
                .with_hint(format!(
                    "use `{inner}` next to `{shown}` here instead, or copy what it provides into \
                     `{shown}`"
                )),
            );
            return None;
        }
        let before = self.problems.iter().filter(|p| p.is_error()).count();
        let bound = bind(
            &template.spec.config,
            &reference.config,
            self.base,
            Owner::Template(&shown),
            path,
            &mut self.problems,
        );
        if self.problems.iter().filter(|p| p.is_error()).count() > before {
            return None;
        }
        let scope = bound.scope(self.base.clone(), self.mask);
        let mut spec = template.spec.clone();
        spec.config.clear();
        let mut simplifier = Simplifier::new(&scope);
        let evaluated = simplifier.typed(&spec, Kind::Spec, &FieldPath::new().child("spec"));
        let inner_problems = simplifier.into_problems();
        let failed = inner_problems.iter().any(Problem::is_error);
        for problem in inner_problems {
            // Point at the `use` in the workflow; say where in the template.
            let mut moved = Problem {
                message: format!(
                    "in template `{shown}` at `{}`: {}",
                    problem.path, problem.message
                ),
                path: path.clone(),
                ..problem
            };
            if moved.code == "undeclared-config" {
                let declared = format!(
                    "the template declares {}",
                    declared_list(&template.spec.config)
                );
                moved.hint = Some(match moved.hint.take() {
                    Some(hint) => format!("{hint} ({declared})"),
                    None => format!("declare it in the template's `spec.config` ({declared})"),
                });
            }
            self.problems.push(moved);
        }
        if failed { None } else { evaluated }
    }
}

fn declared_list(config: &indexmap::IndexMap<String, crate::model::ParameterSchema>) -> String {
    if config.is_empty() {
        "no parameters".to_owned()
    } else {
        config
            .keys()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn unknown_template(name: &str, templates: &TemplateSet, path: &FieldPath) -> Problem {
    let problem = Problem::error(
        "unknown-template",
        format!("unknown template `{}`", display_name(name)),
        path,
    );
    match templates.suggest(name) {
        Some(close) => problem.with_hint(format!("did you mean `{close}`?")),
        None => {
            let known: Vec<String> = templates.names().collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            problem.with_hint(format!(
                "define it in the same file, or load the file that defines it (`--templates \
                 PATH`; `validate` takes it as one more path) (known templates: {known})"
            ))
        }
    }
}

/// The first `use` or `template` inside a template's spec, with where it is.
fn nested_use(spec: &WorkflowSpec) -> Option<(String, String)> {
    let root = FieldPath::new().child("spec");
    if let Some(first) = spec.use_templates.first() {
        return Some((root.child("use").child(0).to_string(), first.name.clone()));
    }
    for (name, service) in &spec.services {
        if let Some(first) = service.use_templates.first() {
            let path = root
                .child("services")
                .child(name.as_str())
                .child("use")
                .child(0);
            return Some((path.to_string(), first.name.clone()));
        }
    }
    for (field, steps) in [
        ("setup", &spec.setup),
        ("steps", &spec.steps),
        ("after", &spec.after),
    ] {
        for (index, step) in steps.iter().enumerate() {
            if let Some(found) = step_use(step, &root.child(field).child(index)) {
                return Some(found);
            }
        }
    }
    None
}

fn step_use(step: &Step, path: &FieldPath) -> Option<(String, String)> {
    if let Some(first) = step.use_templates.first() {
        return Some((path.child("use").child(0).to_string(), first.name.clone()));
    }
    if let Some(template) = &step.template {
        return Some((path.child("template").to_string(), template.name.clone()));
    }
    for (name, service) in &step.services {
        if let Some(first) = service.use_templates.first() {
            let path = path
                .child("services")
                .child(name.as_str())
                .child("use")
                .child(0);
            return Some((path.to_string(), first.name.clone()));
        }
    }
    if let Some(parallel) = &step.parallel {
        let parallel_path = path.child("parallel");
        if let Some(template) = &parallel.template {
            return Some((
                parallel_path.child("template").to_string(),
                template.name.clone(),
            ));
        }
        if let Some(found) = nested_use(&parallel.worker_spec()) {
            return Some((
                format!("{parallel_path}.{}", &found.0["spec.".len()..]),
                found.1,
            ));
        }
    }
    for (field, steps) in [("setup", &step.setup), ("steps", &step.steps)] {
        for (index, sub) in steps.iter().enumerate() {
            if let Some(found) = step_use(sub, &path.child(field).child(index)) {
                return Some(found);
            }
        }
    }
    None
}

/// Top-level `use`: the template's settings under the spec's.
fn inject_spec(spec: &mut WorkflowSpec, template: WorkflowSpec) {
    spec.pod = merge_pod(template.pod, spec.pod.take());
    spec.job = merge_job(template.job, spec.job.take());
    let mut events = template.events;
    events.append(&mut spec.events);
    spec.events = events;
    spec.execution = merge_execution(template.execution, spec.execution.take());
    spec.concurrency = merge_concurrency(template.concurrency, spec.concurrency.take());
    spec.pvcs = merge_map(template.pvcs, take(&mut spec.pvcs));
    spec.content = merge_content(template.content, spec.content.take());
    spec.services = merge_map(template.services, take(&mut spec.services));
    spec.container = merge_container(template.container, spec.container.take());
    spec.system = merge_system(template.system, spec.system.take());
    spec.timeouts = merge_timeouts(template.timeouts, spec.timeouts.take());
    spec.setup = [template.setup, take(&mut spec.setup)].concat();
    spec.steps = [template.steps, take(&mut spec.steps)].concat();
    spec.after = [take(&mut spec.after), template.after].concat();
}

/// Step `use`: content, services and container merge under the step's;
/// the template's steps wrap the step's.
fn inject_step(step: &mut Step, template: WorkflowSpec) {
    step.content = merge_content(template.content, step.content.take());
    step.services = merge_map(template.services, take(&mut step.services));
    step.container = merge_container(template.container, step.container.take());
    if template.setup.is_empty() && template.steps.is_empty() && template.after.is_empty() {
        return;
    }
    step.setup = [template.setup, take(&mut step.setup)].concat();
    step.steps = [template.steps, take(&mut step.steps), template.after].concat();
}

/// Service `use`: pod, content, container and pvcs merge under the service's.
fn inject_service(service: &mut Service, template: WorkflowSpec) {
    service.pod = merge_pod(template.pod, service.pod.take());
    service.content = merge_content(template.content, service.content.take());
    if let Some(container) = merge_container(template.container, Some(service.container())) {
        service.working_dir = container.working_dir;
        service.image = container.image;
        service.image_pull_policy = container.image_pull_policy;
        service.env = container.env;
        service.env_from = container.env_from;
        service.command = container.command;
        service.args = container.args;
        service.resources = container.resources;
        service.security_context = container.security_context;
        service.volume_mounts = container.volume_mounts;
    }
    service.pvcs = merge_map(template.pvcs, take(&mut service.pvcs));
}

/// Writes a resolved worker spec back into the `parallel` block.
fn set_worker_spec(parallel: &mut Parallel, spec: WorkflowSpec) {
    parallel.use_templates = spec.use_templates;
    parallel.config = spec.config;
    parallel.content = spec.content;
    parallel.container = spec.container;
    parallel.job = spec.job;
    parallel.pod = spec.pod;
    parallel.services = spec.services;
    parallel.setup = spec.setup;
    parallel.steps = spec.steps;
    parallel.after = spec.after;
    parallel.events = spec.events;
    parallel.execution = spec.execution;
    parallel.concurrency = spec.concurrency;
    parallel.timeouts = spec.timeouts;
    parallel.pvcs = spec.pvcs;
    parallel.system = spec.system;
    parallel.notifications = spec.notifications;
}

/// Steps that are nothing but a group (no name, no settings) are replaced by
/// their children, as Testkube's `FlattenStepList` does.
fn flatten(steps: Vec<Step>) -> Vec<Step> {
    let mut flat = Vec::with_capacity(steps.len());
    for mut step in steps {
        let setup = take(&mut step.setup);
        let children = take(&mut step.steps);
        if step == Step::default() {
            flat.extend(setup);
            flat.extend(children);
        } else {
            step.setup = setup;
            step.steps = children;
            flat.push(step);
        }
    }
    flat
}
