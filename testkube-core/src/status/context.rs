//! What the runner knows while it walks a worker's steps, and the
//! expression variables that come from it: `passed`, `failed`, `status`,
//! `<stepId>`, `step.<id>.*`, `self.*`.
//!
//! `passed` at a point of the sequence is Testkube's "current status": it is
//! true while every required step finished so far *on the path to this
//! point* succeeded: the earlier required siblings of the step, and the
//! earlier required siblings of each enclosing group (the status a group
//! starts with is its parent's at that moment). Optional steps never change
//! it, a `skipped` step counts as a success, and a group's own result only
//! counts once the group is finished (for its later siblings).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::expr::{Context, Expr, ExprError, truthy};

use super::statuses::StepStatus;
use super::verdict::{ChildVerdict, group_status};

/// The condition of a step that does not write one.
pub const DEFAULT_CONDITION: &str = "passed";
/// The condition of an `artifacts` collection that does not write one.
pub const DEFAULT_ARTIFACTS_CONDITION: &str = "always";
/// Where `step.<id>.results` points by default (Testkube's `/data/.steps/<id>`).
pub const DEFAULT_RESULTS_BASE: &str = "/data/.steps";

/// Why a condition (`condition`, `retry.until`, `retry.count`) could not be
/// decided.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// The text is not a valid expression.
    #[error("invalid condition `{condition}`: {source}")]
    Syntax {
        /// The condition as written.
        condition: String,
        /// The parse error, with its span.
        source: ExprError,
    },
    /// Evaluation failed, or needs a value that is not known (a step that
    /// does not exist, an output nobody wrote, `self.*` outside `until`).
    #[error("cannot decide condition `{condition}`: {source}")]
    Evaluation {
        /// The condition as written.
        condition: String,
        /// The evaluation error, with its span.
        source: ExprError,
    },
    /// `retry.count` is not a whole number ≥ 0.
    #[error("retry count `{value}` is not a whole number of retries")]
    RetryCount {
        /// The count as written or computed.
        value: String,
    },
}

/// The run-time state behind conditions: the status and outputs of every
/// finished step, and the enclosing groups of the current point, in order.
///
/// The runner drives it as it walks the plan: [`StatusContext::enter`] a
/// group, [`StatusContext::should_run`] each child, [`StatusContext::finish`]
/// it, and [`StatusContext::leave`] the group to get the group's verdict
/// (which it then `finish`es in the parent). It also implements
/// [`Context`], so templates (`{{ step.build.outputs.version }}`) see the
/// same values. Everything else (`config.*`, `env.*`, worker variables...)
/// comes from the parent context given with [`StatusContext::with_parent`].
#[derive(Clone)]
pub struct StatusContext {
    parent: Option<Arc<dyn Context + Send + Sync>>,
    results_base: String,
    declared: BTreeSet<String>,
    /// The steps whose operations are running, outermost first: templates
    /// evaluated now belong to the innermost (`step.results`).
    running: Vec<String>,
    steps: BTreeMap<String, StepRecord>,
    /// The outermost entry is the level above the root; never popped.
    scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Default)]
struct StepRecord {
    status: Option<StepStatus>,
    exit_code: Option<i64>,
    outputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Scope {
    /// Every required step finished in this scope (and, at entry, in the
    /// enclosing ones) succeeded.
    passed: bool,
    children: Vec<ChildVerdict>,
}

impl Scope {
    fn new(passed: bool) -> Self {
        Scope {
            passed,
            children: Vec::new(),
        }
    }
}

impl std::fmt::Debug for StatusContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusContext")
            .field("parent", &self.parent.as_ref().map(|_| "<context>"))
            .field("results_base", &self.results_base)
            .field("declared", &self.declared)
            .field("running", &self.running)
            .field("steps", &self.steps)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Default for StatusContext {
    fn default() -> Self {
        StatusContext::new()
    }
}

impl StatusContext {
    /// A context before the first step: nothing finished, `passed` is true.
    #[must_use]
    pub fn new() -> Self {
        StatusContext {
            parent: None,
            results_base: DEFAULT_RESULTS_BASE.to_owned(),
            declared: BTreeSet::new(),
            running: Vec::new(),
            steps: BTreeMap::new(),
            scopes: vec![Scope::new(true)],
        }
    }

    /// Answers every other variable (and `file()`, `secret()`...) from
    /// `parent`.
    #[must_use]
    pub fn with_parent(mut self, parent: Arc<dyn Context + Send + Sync>) -> Self {
        self.parent = Some(parent);
        self
    }

    /// The folder under which each step has its results folder
    /// (`step.<id>.results` is `<base>/<id>`).
    #[must_use]
    pub fn with_results_base(mut self, base: impl Into<String>) -> Self {
        self.results_base = base.into();
        self
    }

    /// Makes a step id known before it runs, so that `<id>` in a condition
    /// means "true until it has run" (Testkube ignores steps that did not run
    /// yet) and `step.<id>.results` resolves. Declare every id of the plan
    /// at the start; an id never declared nor finished is an unknown
    /// variable.
    pub fn declare(&mut self, id: impl Into<String>) {
        self.declared.insert(id.into());
    }

    /// Marks step `id` as running until [`StatusContext::end_step`]: what is
    /// evaluated meanwhile (its command, its content, its artifacts) is the
    /// step's own, so `step.results` is its results folder. Steps nest:
    /// a sub-step begins and ends inside its parent.
    pub fn begin_step(&mut self, id: impl Into<String>) {
        self.running.push(id.into());
    }

    /// Ends the innermost step begun with [`StatusContext::begin_step`].
    pub fn end_step(&mut self) {
        self.running.pop();
    }

    /// The results folder of step `id` (`step.<id>.results`).
    fn results_dir(&self, id: &str) -> String {
        format!("{}/{id}", self.results_base.trim_end_matches('/'))
    }

    /// Enters a group: its children are decided and recorded in it. The group
    /// starts with the current `passed`.
    pub fn enter(&mut self) {
        let passed = self.passed();
        self.scopes.push(Scope::new(passed));
    }

    /// Leaves the innermost group and returns its verdict
    /// ([`group_status`] of its children); record it with
    /// [`StatusContext::finish`] (or override it, e.g. with `timeout`).
    /// `None` if no group was entered.
    pub fn leave(&mut self, negative: bool) -> Option<StepStatus> {
        if self.scopes.len() < 2 {
            return None;
        }
        let scope = self.scopes.pop()?;
        Some(group_status(negative, scope.children))
    }

    /// Records a finished step in the current group: its final status, and
    /// whether it is `optional`. A required step that did not succeed makes
    /// `passed` false for the rest of the group (and of the groups inside it).
    pub fn finish(&mut self, id: impl Into<String>, status: StepStatus, optional: bool) {
        let id = id.into();
        self.declared.insert(id.clone());
        self.steps.entry(id).or_default().status = Some(status);
        if let Some(scope) = self.scopes.last_mut() {
            scope.children.push(ChildVerdict { status, optional });
            if !optional && !status.is_success() {
                scope.passed = false;
            }
        }
    }

    /// Records what the latest attempt of a step left: its exit code and its
    /// outputs (`/testkube/outputs/<key>` contents, trimmed). Replaces what
    /// an earlier attempt recorded.
    pub fn record_attempt(
        &mut self,
        id: impl Into<String>,
        exit_code: Option<i64>,
        outputs: BTreeMap<String, String>,
    ) {
        let id = id.into();
        self.declared.insert(id.clone());
        let record = self.steps.entry(id).or_default();
        record.exit_code = exit_code;
        record.outputs = outputs;
    }

    /// `passed` at the current point (see the module documentation).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.scopes.last().is_none_or(|scope| scope.passed)
    }

    /// The final status of a finished step.
    #[must_use]
    pub fn status(&self, id: &str) -> Option<StepStatus> {
        self.steps.get(id).and_then(|record| record.status)
    }

    /// Decides whether step `step_id` runs: evaluates its `condition` (empty
    /// means [`DEFAULT_CONDITION`]) at the current point. Non-boolean
    /// results count by truthiness (`""`, `0`, `"false"`, `null` are false).
    ///
    /// # Errors
    /// [`ConditionError`] when the condition does not parse, fails, or needs
    /// a value nobody knows.
    pub fn should_run(&self, step_id: &str, condition: &str) -> Result<bool, ConditionError> {
        let view = View {
            ctx: self,
            current: Some(step_id),
            attempt: None,
            scope: None,
        };
        decide(condition, DEFAULT_CONDITION, &view)
    }

    /// [`StatusContext::should_run`] where `scope` answers what the status
    /// does not (instead of the parent): e.g. the step's own `env`. A scope
    /// that needs the status's variables reads them through this context.
    ///
    /// # Errors
    /// As [`StatusContext::should_run`].
    pub fn should_run_in(
        &self,
        step_id: &str,
        condition: &str,
        scope: &dyn Context,
    ) -> Result<bool, ConditionError> {
        let view = View {
            ctx: self,
            current: Some(step_id),
            attempt: None,
            scope: Some(scope),
        };
        decide(condition, DEFAULT_CONDITION, &view)
    }

    /// Evaluates `condition` with `status` as the step's own result: what
    /// `retry.until` sees, where `passed`, `failed`, `status` and `self.*`
    /// are about this attempt.
    pub(crate) fn decide_for_attempt(
        &self,
        step_id: &str,
        status: StepStatus,
        condition: &str,
        default: &str,
        scope: Option<&dyn Context>,
    ) -> Result<bool, ConditionError> {
        let view = View {
            ctx: self,
            current: Some(step_id),
            attempt: Some(status),
            scope,
        };
        decide(condition, default, &view)
    }

    pub(crate) fn parent(&self) -> Option<&(dyn Context + Send + Sync)> {
        self.parent.as_deref()
    }

    fn is_known(&self, id: &str) -> bool {
        self.declared.contains(id) || self.steps.contains_key(id)
    }
}

/// Parses and evaluates a condition to a boolean.
fn decide(condition: &str, default: &str, view: &dyn Context) -> Result<bool, ConditionError> {
    let text = match condition.trim() {
        "" | "null" => default,
        text => text,
    };
    let expr = Expr::parse(text).map_err(|source| ConditionError::Syntax {
        condition: text.to_owned(),
        source,
    })?;
    let value =
        expr.into_condition()
            .resolve(view)
            .map_err(|source| ConditionError::Evaluation {
                condition: text.to_owned(),
                source,
            })?;
    Ok(truthy(&value))
}

impl Context for StatusContext {
    fn variable(&self, name: &str) -> Option<Value> {
        View {
            ctx: self,
            current: self.running.last().map(String::as_str),
            attempt: None,
            scope: None,
        }
        .variable(name)
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        self.parent()?.file(path)
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        self.parent()?.glob(patterns)
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        self.parent()?.secret(name, key)
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        self.parent()?.now()
    }

    fn working_dir(&self) -> Option<String> {
        self.parent()?.working_dir()
    }
}

/// The variables at one point: the context, the step being decided (for
/// `step.results`), in `retry.until` the attempt's status, and what answers
/// the other variables when not the parent.
struct View<'a> {
    ctx: &'a StatusContext,
    current: Option<&'a str>,
    attempt: Option<StepStatus>,
    scope: Option<&'a dyn Context>,
}

impl View<'_> {
    /// `passed`: of the attempt in `until`, of the current point otherwise.
    fn passed(&self) -> bool {
        match self.attempt {
            Some(status) => status.is_passed(),
            None => self.ctx.passed(),
        }
    }

    /// `failed`: Testkube's `status != "passed" && status != "skipped"`.
    fn failed(&self) -> bool {
        match self.attempt {
            Some(status) => !status.is_success(),
            None => !self.ctx.passed(),
        }
    }

    /// `status`: the attempt's status, or `passed`/`failed` for the point.
    fn status(&self) -> &'static str {
        match self.attempt {
            Some(status) => status.as_str(),
            None if self.ctx.passed() => StepStatus::Passed.as_str(),
            None => StepStatus::Failed.as_str(),
        }
    }

    fn self_variable(&self, name: &str) -> Option<Value> {
        let status = self.attempt?;
        Some(match name {
            "status" => Value::from(status.as_str()),
            "passed" | "success" => Value::Bool(status.is_passed()),
            "failed" | "error" => Value::Bool(!status.is_success()),
            _ => return None,
        })
    }

    fn step_variable(&self, rest: &str) -> Option<Value> {
        if rest == "results" {
            return self.current.map(|id| Value::from(self.ctx.results_dir(id)));
        }
        let (id, property) = rest.split_once('.')?;
        let record = self.ctx.steps.get(id);
        match property {
            "results" if self.ctx.is_known(id) => Some(Value::from(self.ctx.results_dir(id))),
            "status" => record?.status.map(|s| Value::from(s.as_str())),
            "exitCode" => record?.exit_code.map(Value::from),
            // Only single outputs: an output nobody wrote stays unknown (an
            // error), as in Testkube, instead of reading as `null`.
            _ => {
                let key = property.strip_prefix("outputs.")?;
                record?.outputs.get(key).map(|v| Value::from(v.as_str()))
            }
        }
    }
}

impl Context for View<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        let builtin = match name {
            "always" => Some(Value::Bool(true)),
            "never" => Some(Value::Bool(false)),
            "passed" | "success" => Some(Value::Bool(self.passed())),
            "failed" | "error" => Some(Value::Bool(self.failed())),
            "status" => Some(Value::from(self.status())),
            _ => None,
        };
        if builtin.is_some() {
            return builtin;
        }
        if let Some(rest) = name.strip_prefix("self.") {
            return self.self_variable(rest);
        }
        if let Some(rest) = name.strip_prefix("step.")
            && let Some(value) = self.step_variable(rest)
        {
            return Some(value);
        }
        if !name.contains('.') && self.ctx.is_known(name) {
            // A step that has not run yet does not hold anything back.
            let status = self.ctx.status(name);
            return Some(Value::Bool(status.is_none_or(StepStatus::is_success)));
        }
        match self.scope {
            Some(scope) => scope.variable(name),
            None => self.ctx.parent()?.variable(name),
        }
    }

    fn file(&self, path: &str) -> Option<Result<String, String>> {
        self.ctx.file(path)
    }

    fn glob(&self, patterns: &[String]) -> Option<Result<Vec<String>, String>> {
        self.ctx.glob(patterns)
    }

    fn secret(&self, name: &str, key: &str) -> Option<Result<String, String>> {
        self.ctx.secret(name, key)
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        self.ctx.now()
    }

    fn working_dir(&self) -> Option<String> {
        self.ctx.working_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_without_enter_is_none() {
        let mut ctx = StatusContext::new();
        assert_eq!(ctx.leave(false), None);
        assert!(ctx.passed());
    }

    #[test]
    fn empty_and_null_conditions_default_to_passed() {
        let mut ctx = StatusContext::new();
        ctx.enter();
        ctx.finish("a", StepStatus::Failed, false);
        assert_eq!(ctx.should_run("b", ""), Ok(false));
        assert_eq!(ctx.should_run("b", "null"), Ok(false));
    }

    #[test]
    fn results_dir_joins_without_double_slash() {
        let ctx = StatusContext::new().with_results_base("/w/.steps/");
        assert_eq!(ctx.results_dir("x"), "/w/.steps/x");
    }

    #[test]
    fn step_results_is_the_folder_of_the_running_step() {
        let mut ctx = StatusContext::new().with_results_base("/w/.steps");
        ctx.declare("build");
        ctx.declare("test");
        let results = |ctx: &StatusContext, name: &str| ctx.variable(name);
        assert_eq!(results(&ctx, "step.results"), None, "no step is running");
        ctx.begin_step("build");
        ctx.begin_step("test");
        assert_eq!(
            results(&ctx, "step.results"),
            Some(Value::from("/w/.steps/test"))
        );
        assert_eq!(
            results(&ctx, "step.build.results"),
            Some(Value::from("/w/.steps/build"))
        );
        ctx.end_step();
        assert_eq!(
            results(&ctx, "step.results"),
            Some(Value::from("/w/.steps/build"))
        );
        assert_eq!(results(&ctx, "step.nope.results"), None);
    }

    #[test]
    fn a_scope_answers_what_the_status_does_not() {
        use crate::expr::MapContext;
        let parent = MapContext::new().with("env", serde_json::json!({"X": "runner"}));
        let mut ctx = StatusContext::new().with_parent(Arc::new(parent));
        ctx.declare("a");
        let scope = MapContext::new()
            .with("env.X", Value::from("step"))
            .with("passed", Value::Bool(false));
        assert_eq!(ctx.should_run("a", "env.X == 'runner'"), Ok(true));
        // The status's own variables still win.
        assert_eq!(
            ctx.should_run_in("a", "env.X == 'step' && passed", &scope),
            Ok(true)
        );
    }

    #[test]
    fn self_variables_need_an_attempt() {
        let ctx = StatusContext::new();
        assert!(matches!(
            ctx.should_run("a", "self.passed"),
            Err(ConditionError::Evaluation { .. })
        ));
    }
}
