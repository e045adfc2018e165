//! What a worker's runner asks the engine for, through its
//! [`Orchestrator`](testkube_core::engine::Orchestrator): `parallel`
//! blocks (with their `transfer`/`fetch` files), `execute` child
//! executions, waiting while a `paused` step is paused, and the start
//! barrier of a `parallel` block with `paused: true`. A block whose
//! workers depend on run-time data goes with its `matrix`/`shards`/
//! `count`/`maxCount` expressions evaluated here first (`glob()` over this
//! worker's files, earlier steps' outputs), so the engine can plan them.
//!
//! The runner never decides these itself: the engine owns every worker
//! and execution, so a runner inside a pod asks the same questions
//! through the API.

use std::sync::Arc;

use serde_json::Value;
use testkube_core::engine::{ExecuteRequest, ParallelRequest, StepDetail};
use testkube_core::expr::Expr;
use testkube_core::plan::{PlanExecute, PlanParallel, PlanStep, PlanStrategy};
use testkube_core::status::StepStatus;

use super::workspace::{InFolder, absolute};
use super::{OperationEnd, StepRunner, Stop, stopped};

impl StepRunner {
    /// Asks the engine to run a `parallel` block and waits for its verdict:
    /// packs the block's `transfer` files first and unpacks its workers'
    /// `fetch` files after. Only the step's own deadline drops the request
    /// (which stops the block's workers); interruptions reach the workers
    /// through the engine.
    pub(super) async fn parallel(&mut self, step: &PlanStep, block: &PlanParallel) -> OperationEnd {
        let mut parallel = block.clone();
        if parallel.decided_at_run_time.is_some() {
            match self.decide_strategy(block) {
                Ok(strategy) => parallel.strategy = strategy,
                Err(message) => return OperationEnd::failed(message),
            }
        }
        if let Err(message) = self.pack_transfers(step, block).await {
            return OperationEnd::failed(message);
        }
        let request = ParallelRequest {
            step: step.id.clone(),
            parallel,
        };
        let orchestrator = Arc::clone(&self.orchestrator);
        let outcome = tokio::select! {
            outcome = orchestrator.run_parallel(request) => outcome,
            () = sleep_until(self.deadline()) => return stopped(Stop::Deadline),
        };
        let mut end = OperationEnd {
            status: outcome.status,
            exit_code: None,
            message: outcome.message,
        };
        if !block.fetch.is_empty()
            && let Err(message) = self.unpack_fetched(block, &outcome.workers).await
        {
            if end.status.is_success() {
                end.status = StepStatus::Failed;
            }
            end.message = Some(match end.message {
                Some(earlier) => format!("{earlier}; {message}"),
                None => message,
            });
        }
        end
    }

    /// Asks the engine to run an `execute` operation's children and waits
    /// for their verdict (the step's own deadline aborts them). Config
    /// values are rendered first: they may use step outputs and `env`.
    pub(super) async fn execute(&mut self, step: &PlanStep, execute: &PlanExecute) -> OperationEnd {
        let mut execute = execute.clone();
        for workflow in &mut execute.workflows {
            for child in &mut workflow.executions {
                for value in child.config.values_mut() {
                    if let Err(message) = self.render_value(value) {
                        return OperationEnd::failed(message);
                    }
                }
                if let Some(description) = &child.description {
                    match self.render(description) {
                        Ok(text) => child.description = Some(text),
                        Err(message) => return OperationEnd::failed(message),
                    }
                }
            }
        }
        let request = ExecuteRequest {
            step: step.id.clone(),
            execute,
        };
        let orchestrator = Arc::clone(&self.orchestrator);
        let outcome = tokio::select! {
            outcome = orchestrator.execute(request) => outcome,
            () = sleep_until(self.deadline()) => return stopped(Stop::Deadline),
        };
        for child in &outcome.children {
            let line = format!(
                "child {} ({}): {}\n",
                child.name, child.workflow, child.status
            );
            self.log(&step.id, line).await;
        }
        OperationEnd {
            status: outcome.status,
            exit_code: None,
            message: outcome.message,
        }
    }

    /// A `paused` step: reports it `paused` and waits until the execution
    /// is resumed. Returns the step's final status when the run is stopped
    /// (or a timeout fires) meanwhile.
    pub(super) async fn wait_while_paused(&mut self, step: &PlanStep) -> Option<StepStatus> {
        let detail = StepDetail {
            message: Some("paused: resume the execution to run it".to_owned()),
            ..StepDetail::default()
        };
        self.emit_step(step, StepStatus::Paused, detail).await;
        let orchestrator = Arc::clone(&self.orchestrator);
        let mut stop = self.stop_signal();
        let fired = tokio::select! {
            interruption = orchestrator.paused(&step.id) => Stop::Interrupted(interruption?),
            fired = stop.fired() => fired,
        };
        let end = stopped(fired);
        let detail = StepDetail {
            message: Some("stopped while paused".to_owned()),
            ..StepDetail::default()
        };
        self.emit_step(step, end.status, detail).await;
        Some(end.status)
    }

    /// The start barrier: reports ready and waits for the other workers of
    /// the block. Returns why when the run was stopped meanwhile.
    pub(super) async fn wait_for_siblings(&mut self) -> Option<Stop> {
        if !self.link.barrier {
            return None;
        }
        let orchestrator = Arc::clone(&self.orchestrator);
        let mut stop = self.stop_signal();
        tokio::select! {
            interruption = orchestrator.ready() => interruption.map(Stop::Interrupted),
            fired = stop.fired() => Some(fired),
        }
    }

    /// Replaces the expressions of a block's `matrix`, `shards`, `count`
    /// and `maxCount` (those the plan could not decide) by their values
    /// now, in this worker: `glob()` sees the files earlier steps made,
    /// `step.<id>.outputs.<key>` and `env.*` are known. The engine plans
    /// the workers from them (see `ParallelRequest::parallel`).
    fn decide_strategy(&self, block: &PlanParallel) -> Result<PlanStrategy, String> {
        let mut strategy = block.strategy.clone();
        let working_dir = match block
            .run_time
            .as_ref()
            .and_then(|run_time| run_time.working_dir.as_deref())
        {
            Some(dir) => absolute(&self.render(dir)?, "/data"),
            None => "/data".to_owned(),
        };
        let scope = self.step_scope();
        let context = InFolder {
            inner: &scope,
            paths: &self.paths,
            working_dir,
        };
        for (field, lists) in [
            ("matrix", &mut strategy.matrix),
            ("shards", &mut strategy.shards),
        ] {
            for (key, value) in lists.iter_mut() {
                let Value::String(text) = value else { continue };
                let evaluated =
                    scope.checked(evaluate_strategy(&context, &format!("{field}.{key}"), text))?;
                if !evaluated.is_array() {
                    return Err(format!(
                        "cannot decide the parallel workers: `{field}.{key}` (`{text}`) gave \
                         {}, not a list; write an expression that gives a list, e.g. \
                         `glob(\"tests/*.py\")` or `split(step.prep.outputs.items, \",\")`",
                        short(&evaluated)
                    ));
                }
                *value = evaluated;
            }
        }
        for (field, count) in [
            ("count", &mut strategy.count),
            ("maxCount", &mut strategy.max_count),
        ] {
            if let Some(Value::String(text)) = count {
                let evaluated = scope.checked(evaluate_strategy(&context, field, text))?;
                *count = Some(evaluated);
            }
        }
        Ok(strategy)
    }

    /// Renders the `{{ }}` templates in the strings of `value`.
    fn render_value(&self, value: &mut Value) -> Result<(), String> {
        match value {
            Value::String(text) if text.contains("{{") => {
                *text = self.render(text)?;
            }
            Value::Array(items) => {
                for item in items {
                    self.render_value(item)?;
                }
            }
            Value::Object(map) => {
                for item in map.values_mut() {
                    self.render_value(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// One strategy expression (`{{ }}` around it is allowed).
fn evaluate_strategy(context: &InFolder<'_>, field: &str, text: &str) -> Result<Value, String> {
    Expr::parse(strip_braces(text))
        .and_then(|expr| expr.resolve(context))
        .map_err(|err| format!("cannot decide the parallel workers: `{field}` is `{text}`: {err}"))
}

/// `{{ x }}` written where a whole expression is expected means `x`.
fn strip_braces(text: &str) -> &str {
    let trimmed = text.trim();
    match trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
    {
        Some(inner) if !inner.contains("{{") && !inner.contains("}}") => inner.trim(),
        _ => trimmed,
    }
}

/// A value for a message, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
