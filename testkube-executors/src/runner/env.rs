//! A step's environment, computed once for its process and for its
//! expressions: `{{ env.NAME }}` is what the step's shell sees as `$NAME`.
//!
//! The process gets three layers, later ones winning: the runner's own
//! environment (which every launcher passes on), the workspace variables
//! (`TESTKUBE_OUTPUTS`, `TMPDIR`), and the container's `env` from the plan
//! (`CI=1`, `global: true` variables, the workflow's, templates', parent
//! steps', the step's own and `run.env`, already merged and deduplicated by
//! the planner; a service instance's for a service). [`StepEnv`] holds
//! them and is itself the expression context of everything the step
//! evaluates (condition, retry, command, content, artifacts...): `env` and
//! `env.NAME` come from the layers, every other variable from the
//! runner's context. A step that runs no command of its own (a group) has
//! the container variables of the step around it.
//!
//! A container value may be a template. As in Testkube's init process, it
//! is evaluated when it is needed, so a value may use another variable of
//! the same container wherever that one is written (`{{ env.HOST }}:8080`).
//! A value that names itself (`/opt/bin:{{ env.PATH }}`) gets the value
//! of the layers below; two values that need each other are an error.
//! Values from `valueFrom.secretKeyRef` were replaced by the secret before
//! planning and are masked in logs like every other secret.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use testkube_core::expr::{Context, Template};
use testkube_core::model::EnvVar;
use testkube_core::plan::{Operation, PlanStep};

use super::StepRunner;

impl StepRunner {
    /// The expression context of the running step: `env` is the step's.
    pub(super) fn step_scope(&self) -> StepEnv<'_> {
        self.env_of(self.step_env.last().map_or(&[][..], Vec::as_slice))
    }

    /// The container variables of `step`: those of the command it runs, or
    /// else those of the step around it.
    pub(super) fn env_vars<'a>(&'a self, step: &'a PlanStep) -> &'a [EnvVar] {
        own_env(step)
            .or_else(|| self.step_env.last().map(Vec::as_slice))
            .unwrap_or_default()
    }

    /// The environment of a process with the container variables `vars`,
    /// as the expression context of its fields.
    pub(super) fn env_of<'a>(&'a self, vars: &'a [EnvVar]) -> StepEnv<'a> {
        StepEnv::new(&self.status, &self.runner_env, &self.workspace_env(), vars)
    }

    /// What the runner adds to every process's environment.
    pub(super) fn workspace_env(&self) -> Vec<(String, String)> {
        vec![
            ("TESTKUBE_OUTPUTS".to_owned(), self.paths.outputs_visible()),
            ("TMPDIR".to_owned(), self.paths.tmp_visible()),
        ]
    }
}

/// The container variables of the command a step runs itself, if any.
fn own_env(step: &PlanStep) -> Option<&[EnvVar]> {
    step.operations
        .iter()
        .find_map(|operation| match operation {
            Operation::Run { container, .. } | Operation::Shell { container, .. } => {
                Some(container.env.as_slice())
            }
            _ => None,
        })
}

/// The environment of one step or service instance, and the expression
/// context that answers `env` from it. See the [module documentation](self).
pub(crate) struct StepEnv<'a> {
    /// Everything but `env`.
    base: &'a dyn Context,
    /// The runner's environment and the workspace variables.
    inherited: Map<String, Value>,
    /// The container's variables, by name, as written (last definition).
    defined: Vec<(&'a str, &'a str)>,
    /// Container variables evaluated so far.
    resolved: RefCell<BTreeMap<String, String>>,
    /// The container variables being evaluated, outermost first.
    resolving: RefCell<Vec<String>>,
    /// The first problem met while evaluating a container variable.
    problem: RefCell<Option<String>>,
}

impl<'a> StepEnv<'a> {
    /// The environment of a process started by a runner whose own
    /// environment is `runner`, with the workspace variables `workspace`
    /// and the container variables `container`; `base` answers every other
    /// variable.
    pub(crate) fn new(
        base: &'a dyn Context,
        runner: &Map<String, Value>,
        workspace: &[(String, String)],
        container: &'a [EnvVar],
    ) -> Self {
        let mut inherited = runner.clone();
        for (name, value) in workspace {
            inherited.insert(name.clone(), Value::from(value.as_str()));
        }
        let mut defined: Vec<(&str, &str)> = Vec::new();
        for var in container {
            let value = var.value.as_deref().unwrap_or_default();
            // A later definition replaces an earlier one, as in the
            // process's env.
            match defined.iter_mut().find(|(name, _)| *name == var.name) {
                Some(slot) => slot.1 = value,
                None => defined.push((&var.name, value)),
            }
        }
        StepEnv {
            base,
            inherited,
            defined,
            resolved: RefCell::new(BTreeMap::new()),
            resolving: RefCell::new(Vec::new()),
            problem: RefCell::new(None),
        }
    }

    /// Evaluates every container variable: the variables the process gets
    /// on top of the runner's environment (`workspace` first), in order.
    ///
    /// # Errors
    /// The first value that cannot be evaluated, naming the variable.
    pub(crate) fn process_env(
        &self,
        workspace: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>, String> {
        let mut env = workspace;
        for (name, _) in &self.defined {
            match self.container_value(name) {
                Some(value) => env.push(((*name).to_owned(), value)),
                None => return Err(self.problem_or(name)),
            }
        }
        // A cycle can be found by a lookup that then read `env` instead.
        match self.problem.borrow().clone() {
            Some(problem) => Err(problem),
            None => Ok(env),
        }
    }

    /// `env.NAME`: the container's value, else the inherited one.
    fn lookup(&self, name: &str) -> Option<String> {
        let is_own_value = self.resolving.borrow().last().is_some_and(|n| n == name);
        if self.defined(name).is_some() && !is_own_value {
            return self.container_value(name);
        }
        self.inherited
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// A container variable's value, evaluated once; `None` records why.
    fn container_value(&self, name: &str) -> Option<String> {
        if let Some(value) = self.resolved.borrow().get(name) {
            return Some(value.clone());
        }
        let raw = self.defined(name)?;
        if self.resolving.borrow().iter().any(|n| n == name) {
            let chain = self.resolving.borrow().join(" → ");
            self.record(format!(
                "env `{name}` depends on itself ({chain} → {name}): \
                 remove one of the references"
            ));
            return None;
        }
        if !raw.contains("{{") {
            return Some(raw.to_owned());
        }
        self.resolving.borrow_mut().push(name.to_owned());
        let rendered = Template::parse(raw).and_then(|template| template.render(self));
        self.resolving.borrow_mut().pop();
        match rendered {
            Ok(value) => {
                self.resolved
                    .borrow_mut()
                    .insert(name.to_owned(), value.clone());
                Some(value)
            }
            Err(err) => {
                self.record(format!("env `{name}`: cannot evaluate `{raw}`: {err}"));
                None
            }
        }
    }

    /// `env`: every variable the process sees.
    fn all(&self) -> Map<String, Value> {
        let mut all = self.inherited.clone();
        for (name, _) in &self.defined {
            if let Some(value) = self.lookup(name) {
                all.insert((*name).to_owned(), Value::String(value));
            }
        }
        all
    }

    /// A container variable as written.
    fn defined(&self, name: &str) -> Option<&'a str> {
        self.defined
            .iter()
            .find(|(defined, _)| *defined == name)
            .map(|(_, value)| *value)
    }

    /// Keeps the first problem: the innermost cause.
    fn record(&self, problem: String) {
        self.problem.borrow_mut().get_or_insert(problem);
    }

    fn problem_or(&self, name: &str) -> String {
        self.problem
            .borrow()
            .clone()
            .unwrap_or_else(|| format!("env `{name}` cannot be evaluated"))
    }

    /// `result`, computed with this context, unless a container variable it
    /// needed could not be evaluated (it would otherwise read as empty).
    ///
    /// # Errors
    /// The variable's problem, else the error of `result`.
    pub(crate) fn checked<T, E: std::fmt::Display>(
        &self,
        result: Result<T, E>,
    ) -> Result<T, String> {
        if let Some(problem) = self.problem.borrow().clone() {
            return Err(problem);
        }
        result.map_err(|err| err.to_string())
    }

    /// Renders a `{{ }}` template of the step with this context.
    ///
    /// # Errors
    /// The template's error, or the problem of a container variable it
    /// needed (which would otherwise read as empty).
    pub(crate) fn render(&self, text: &str) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        let rendered = Template::parse(text).and_then(|template| template.render(self));
        if let Some(problem) = self.problem.borrow().clone() {
            return Err(problem);
        }
        rendered.map_err(|err| format!("cannot evaluate `{text}`: {err}"))
    }
}

impl Context for StepEnv<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        if name == "env" {
            return Some(Value::Object(self.all()));
        }
        if let Some(key) = name.strip_prefix("env.") {
            // `None` for a name that is not set: the evaluator then reads
            // `env` and finds nothing there (`null`, empty text).
            return self.lookup(key).map(Value::String);
        }
        self.base.variable(name)
    }

    fn parent(&self) -> Option<&dyn Context> {
        Some(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use testkube_core::expr::MapContext;

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ..EnvVar::default()
        }
    }

    fn render(env: &StepEnv<'_>, text: &str) -> String {
        env.render(text).unwrap()
    }

    #[test]
    fn values_see_each_other_in_any_order_and_themselves_below() {
        let base = MapContext::new().with("config", json!({"port": 8080}));
        let runner = Map::from_iter([("PATH".to_owned(), json!("/usr/bin"))]);
        let container = [
            var("URL", "http://{{ env.HOST }}:{{ config.port }}"),
            var("HOST", "db.{{ env.ZONE }}"),
            var("PATH", "/opt/bin:{{ env.PATH }}"),
            var("ZONE", "local"),
            var("ZONE", "test"),
        ];
        let workspace = [("TMPDIR".to_owned(), "/ws/tmp".to_owned())];
        let env = StepEnv::new(&base, &runner, &workspace, &container);
        assert_eq!(render(&env, "{{ env.URL }}"), "http://db.test:8080");
        assert_eq!(render(&env, "{{ env.PATH }}"), "/opt/bin:/usr/bin");
        assert_eq!(
            render(&env, "{{ env.TMPDIR }}|{{ env.NOPE }}|"),
            "/ws/tmp||"
        );
        assert_eq!(render(&env, "{{ config.port }}"), "8080");
        assert_eq!(render(&env, "{{ env.ZONE == env['ZONE'] }}"), "true");
        let process = env.process_env(workspace.to_vec()).unwrap();
        assert_eq!(
            process,
            [
                ("TMPDIR", "/ws/tmp"),
                ("URL", "http://db.test:8080"),
                ("HOST", "db.test"),
                ("PATH", "/opt/bin:/usr/bin"),
                ("ZONE", "test"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        let all = env.variable("env").unwrap();
        assert_eq!(all["URL"], json!("http://db.test:8080"));
        assert_eq!(all["TMPDIR"], json!("/ws/tmp"));
    }

    #[test]
    fn a_cycle_or_a_bad_value_is_an_error_naming_the_variable() {
        let base = MapContext::new();
        let runner = Map::new();
        let cycle = [var("A", "{{ env.B }}"), var("B", "x{{ env.A }}")];
        let env = StepEnv::new(&base, &runner, &[], &cycle);
        let err = env.process_env(Vec::new()).unwrap_err();
        assert!(err.contains("`A` depends on itself (A → B → A)"), "{err}");

        let bad = [
            var("OK", "fine"),
            var("BAD", "{{ 1 / 0 }}"),
            var("USES", "{{ env.BAD }}"),
        ];
        let env = StepEnv::new(&base, &runner, &[], &bad);
        let err = env.process_env(Vec::new()).unwrap_err();
        assert!(
            err.starts_with("env `BAD`: cannot evaluate `{{ 1 / 0 }}`"),
            "{err}"
        );
        // A template that needs it fails the same way instead of reading "".
        let env = StepEnv::new(&base, &runner, &[], &bad);
        let err = env.render("{{ env.OK }}-{{ env.USES }}").unwrap_err();
        assert!(err.starts_with("env `BAD`"), "{err}");
        let env = StepEnv::new(&base, &runner, &[], &bad);
        assert_eq!(env.render("{{ env.OK }}"), Ok("fine".to_owned()));
    }
}
