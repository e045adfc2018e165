//! The compiler from a resolved workflow to a [`Plan`]: the step tree with
//! effective containers, conditions and operations in order.

use crate::model::{ContainerConfig, EnvVar, Parallel, Retry, Step, TestWorkflow, WorkflowSpec};
use crate::resolve::simplify::integral;
use crate::resolve::{Problem, to_diagnostics};
use crate::yaml::FieldPath;

use super::ids::IdNamespace;
use super::{Operation, Plan, PlanError, PlanOptions, PlanRetry, PlanStep, workflow_name};

/// Compiles a resolved workflow (see [`crate::resolve::resolve_workflow`])
/// into its execution plan.
///
/// # Errors
/// [`PlanError`] when the workflow still holds templates (it was not
/// resolved), when a worker count is invalid (negative, too many workers),
/// when `balance` names a shard key that does not exist, or when an
/// expression fails while substituting worker variables.
pub fn plan_workflow(workflow: &TestWorkflow, options: &PlanOptions) -> Result<Plan, PlanError> {
    let mut compiler = Compiler::new(options, global_env(&workflow.spec));
    let spec_path = FieldPath::new().child("spec");
    let root = compiler.root(&workflow.spec, &spec_path);
    if compiler.problems.iter().any(Problem::is_error) {
        return Err(PlanError {
            diagnostics: to_diagnostics(compiler.problems, None),
        });
    }
    Ok(Plan {
        workflow: workflow_name(workflow),
        global_env: compiler.global_env,
        pod: workflow.spec.pod.clone(),
        job: workflow.spec.job.clone(),
        root,
    })
}

/// Compiles steps; shared by the workflow and every parallel worker.
pub(super) struct Compiler<'a> {
    pub(super) options: &'a PlanOptions,
    pub(super) problems: Vec<Problem>,
    /// Variables marked `global` anywhere in the workflow.
    pub(super) global_env: Vec<EnvVar>,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(options: &'a PlanOptions, global_env: Vec<EnvVar>) -> Self {
        Compiler {
            options,
            problems: Vec::new(),
            global_env,
        }
    }

    /// The container every step (and service, and worker) starts from:
    /// `CI=1`, then the global variables.
    pub(super) fn base_container(&self) -> ContainerConfig {
        let mut env = vec![EnvVar {
            name: "CI".to_owned(),
            value: Some("1".to_owned()),
            ..EnvVar::default()
        }];
        env.extend(self.global_env.iter().cloned());
        ContainerConfig {
            env: crate::resolve::dedupe_env_vars(env),
            ..ContainerConfig::default()
        }
    }

    /// The root step of a workflow or worker spec: its content, services and
    /// container, then `setup`, `steps` and `after` as one group. `first` is
    /// a step that runs before all of them (a parallel block's own
    /// operations).
    pub(super) fn root(&mut self, spec: &WorkflowSpec, path: &FieldPath) -> PlanStep {
        self.root_with(spec, None, path)
    }

    pub(super) fn root_with(
        &mut self,
        spec: &WorkflowSpec,
        first: Option<Step>,
        path: &FieldPath,
    ) -> PlanStep {
        if let Some(reference) = spec.use_templates.first() {
            self.problems
                .push(unresolved(&reference.name, &path.child("use").child(0)));
        }
        let mut children: Vec<(Step, FieldPath)> = Vec::new();
        if let Some(first) = first {
            children.push((first, path.clone()));
        }
        for (field, steps) in [
            ("setup", &spec.setup),
            ("steps", &spec.steps),
            ("after", &spec.after),
        ] {
            for (index, step) in steps.iter().enumerate() {
                children.push((step.clone(), path.child(field).child(index)));
            }
        }
        let root = Step {
            content: spec.content.clone(),
            services: spec.services.clone(),
            container: spec.container.clone(),
            ..Step::default()
        };
        let mut ids = IdNamespace::reserving(children.iter().map(|(step, _)| step));
        let container = self.base_container();
        let mut plan = self.step_shell(&root, "root".to_owned());
        let container = effective_container(&container, &root);
        let steps = self.children(&children, &plan.id, &container, &mut ids);
        plan.operations = self.operations(&root, &container, steps, Vec::new(), path);
        plan
    }

    /// The step's own settings, without operations.
    fn step_shell(&self, step: &Step, id: String) -> PlanStep {
        PlanStep {
            id,
            name: step.name.clone(),
            condition: step.condition.as_ref().map_or_else(
                || default_condition(step).to_owned(),
                |c| c.as_str().to_owned(),
            ),
            negative: step.negative.unwrap_or(false),
            optional: step.optional.unwrap_or(false),
            paused: step.paused.unwrap_or(false),
            retry: step.retry.as_ref().map(plan_retry),
            timeout: step.timeout.as_ref().map(|t| t.as_str().to_owned()),
            operations: Vec::new(),
        }
    }

    fn children(
        &mut self,
        children: &[(Step, FieldPath)],
        parent_id: &str,
        container: &ContainerConfig,
        ids: &mut IdNamespace,
    ) -> Vec<PlanStep> {
        children
            .iter()
            .enumerate()
            .map(|(position, (step, path))| {
                let id = ids.assign(step, parent_id, position + 1);
                self.step(step, id, container, ids, path)
            })
            .collect()
    }

    fn step(
        &mut self,
        step: &Step,
        id: String,
        parent: &ContainerConfig,
        ids: &mut IdNamespace,
        path: &FieldPath,
    ) -> PlanStep {
        if let Some(reference) = step.use_templates.first() {
            self.problems
                .push(unresolved(&reference.name, &path.child("use").child(0)));
        }
        if let Some(reference) = &step.template {
            self.problems
                .push(unresolved(&reference.name, &path.child("template")));
        }
        let mut plan = self.step_shell(step, id);
        let container = effective_container(parent, step);
        let setup_children: Vec<(Step, FieldPath)> = step
            .setup
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), path.child("setup").child(i)))
            .collect();
        let step_children: Vec<(Step, FieldPath)> = step
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), path.child("steps").child(i)))
            .collect();
        // Setup and steps share one numbering for unnamed children.
        let mut all = setup_children;
        let setup_len = all.len();
        all.extend(step_children);
        let mut compiled = self.children(&all, &plan.id, &container, ids);
        let steps = compiled.split_off(setup_len);
        plan.operations = self.operations(step, &container, steps, compiled, path);
        plan
    }

    /// The operations of a step, in the order they happen.
    fn operations(
        &mut self,
        step: &Step,
        container: &ContainerConfig,
        steps: Vec<PlanStep>,
        setup: Vec<PlanStep>,
        path: &FieldPath,
    ) -> Vec<Operation> {
        let mut operations = Vec::new();
        if let Some(delay) = &step.delay {
            operations.push(Operation::Delay {
                duration: delay.as_str().to_owned(),
            });
        }
        if let Some(content) = &step.content {
            operations.push(Operation::Content {
                content: Box::new(content.clone()),
            });
        }
        if !step.services.is_empty() {
            let services = step
                .services
                .iter()
                .map(|(name, service)| {
                    self.service(name, service, &path.child("services").child(name.as_str()))
                })
                .collect();
            operations.push(Operation::StartServices { services });
        }
        if !setup.is_empty() {
            operations.push(Operation::Setup { steps: setup });
        }
        if let Some(run) = &step.run {
            let mut run_container =
                crate::resolve::merge_containers(Some(container.clone()), Some(run.container()))
                    .unwrap_or_default();
            run_container.working_dir =
                join_dir(container.working_dir.as_deref(), run.working_dir.as_deref());
            if run.shell.is_some() {
                run_container.command = None;
                run_container.args = None;
            }
            operations.push(Operation::Run {
                container: Box::new(run_container),
                shell: run.shell.clone(),
            });
        }
        if let Some(script) = &step.shell {
            let mut shell_container = container.clone();
            shell_container.command = None;
            shell_container.args = None;
            operations.push(Operation::Shell {
                script: script.clone(),
                container: Box::new(shell_container),
            });
        }
        if let Some(execute) = &step.execute {
            operations.push(Operation::Execute(
                self.execute(execute, &path.child("execute")),
            ));
        }
        if let Some(parallel) = &step.parallel {
            let mut block = self.parallel(parallel, &path.child("parallel"));
            if let Some(run_time) = &mut block.run_time {
                // `glob()` and `file()` in the strategy see this folder.
                run_time.working_dir.clone_from(&container.working_dir);
            }
            operations.push(Operation::Parallel(Box::new(block)));
        }
        if !steps.is_empty() {
            operations.push(Operation::Steps { steps });
        }
        if !step.services.is_empty() {
            operations.push(Operation::StopServices {
                services: step.services.keys().cloned().collect(),
            });
        }
        if let Some(artifacts) = &step.artifacts {
            // Artifacts are collected even after a failure, unless the step
            // says when it runs.
            let condition = step
                .condition
                .as_ref()
                .map_or_else(|| "always".to_owned(), |c| c.as_str().to_owned());
            let mut artifacts = artifacts.clone();
            artifacts.working_dir = artifacts
                .working_dir
                .or_else(|| container.working_dir.clone());
            operations.push(Operation::Artifacts {
                condition,
                artifacts,
            });
        }
        operations
    }

    /// The step a parallel block's own controls and operations become in
    /// each worker (`None` when the block has none).
    pub(super) fn block_step(parallel: &Parallel) -> Option<Step> {
        let step = Step {
            negative: parallel.negative,
            optional: parallel.optional,
            retry: parallel.retry.clone(),
            timeout: parallel.timeout.clone(),
            delay: parallel.delay.clone(),
            shell: parallel.shell.clone(),
            run: parallel.run.clone(),
            execute: parallel.execute.clone(),
            artifacts: parallel.artifacts.clone(),
            cache: parallel.cache.clone(),
            ..Step::default()
        };
        (step != Step::default()).then_some(step)
    }
}

/// The step's container: its parent's with the step's `container` merged
/// on top and its `workingDir` applied.
fn effective_container(parent: &ContainerConfig, step: &Step) -> ContainerConfig {
    let mut container =
        crate::resolve::merge_containers(Some(parent.clone()), step.container.clone())
            .unwrap_or_default();
    if let Some(own) = step
        .container
        .as_ref()
        .and_then(|c| c.working_dir.as_deref())
    {
        container.working_dir = join_dir(parent.working_dir.as_deref(), Some(own));
    }
    if let Some(dir) = step.working_dir.as_deref() {
        container.working_dir = join_dir(container.working_dir.as_deref(), Some(dir));
    }
    container
}

/// A working directory relative to its parent's (absolute ones as written).
fn join_dir(parent: Option<&str>, dir: Option<&str>) -> Option<String> {
    match (parent, dir) {
        (_, None) => parent.map(str::to_owned),
        (Some(parent), Some(dir)) if !dir.starts_with('/') && !dir.contains("{{") => {
            let joined = format!("{}/{}", parent.trim_end_matches('/'), dir);
            Some(joined.replace("/./", "/"))
        }
        (_, Some(dir)) => Some(dir.to_owned()),
    }
}

fn plan_retry(retry: &Retry) -> PlanRetry {
    let count = match &retry.count {
        crate::model::IntOrExpr::Int(count) => serde_json::Value::from(*count),
        crate::model::IntOrExpr::Expr(text) => integral(&serde_json::Value::String(text.clone()))
            .map_or_else(
                || serde_json::Value::String(text.clone()),
                serde_json::Value::from,
            ),
    };
    PlanRetry {
        count,
        until: retry
            .until
            .as_ref()
            .map_or_else(|| "passed".to_owned(), |until| until.as_str().to_owned()),
    }
}

fn unresolved(name: &str, path: &FieldPath) -> Problem {
    Problem::error(
        "unresolved-template",
        format!("template `{name}` was not applied: plan a resolved workflow"),
        path,
    )
    .with_hint("call resolve::resolve_workflow first (testkube plan does)")
}

/// Every variable marked `global: true` in the workflow's containers, in
/// document order, the last definition of a name winning.
fn global_env(spec: &WorkflowSpec) -> Vec<EnvVar> {
    fn from_container(container: Option<&ContainerConfig>, out: &mut Vec<EnvVar>) {
        for var in container.into_iter().flat_map(|c| &c.env) {
            if var.global == Some(true) {
                out.push(var.clone());
            }
        }
    }
    fn from_step(step: &Step, out: &mut Vec<EnvVar>) {
        from_container(step.container.as_ref(), out);
        if let Some(run) = &step.run {
            from_container(Some(&run.container()), out);
        }
        for child in step.setup.iter().chain(&step.steps) {
            from_step(child, out);
        }
    }
    let mut out = Vec::new();
    from_container(spec.container.as_ref(), &mut out);
    for step in spec.setup.iter().chain(&spec.steps).chain(&spec.after) {
        from_step(step, &mut out);
    }
    crate::resolve::dedupe_env_vars(out)
}

/// When a step runs if it does not say: `passed`, except steps that only
/// collect artifacts, which run `always` (the format's rule), so that a
/// failed test's reports are kept.
fn default_condition(step: &Step) -> &'static str {
    let only_artifacts = step.artifacts.is_some()
        && step.shell.is_none()
        && step.run.is_none()
        && step.execute.is_none()
        && step.parallel.is_none()
        && step.template.is_none()
        && step.setup.is_empty()
        && step.steps.is_empty();
    if only_artifacts { "always" } else { "passed" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_dirs_join_relative_paths() {
        assert_eq!(
            join_dir(Some("/data"), Some("repo")),
            Some("/data/repo".into())
        );
        assert_eq!(
            join_dir(Some("/data/"), Some("./x")),
            Some("/data/x".into())
        );
        assert_eq!(join_dir(Some("/data"), Some("/abs")), Some("/abs".into()));
        assert_eq!(join_dir(None, Some("rel")), Some("rel".into()));
        assert_eq!(join_dir(Some("/data"), None), Some("/data".into()));
    }
}
