//! Fan-outs: `parallel` workers, `services` instances and `execute`
//! children, each expanded into numbered workers by [`crate::shard`] with
//! their worker variables substituted.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::{
    DynamicList, Execute, IntOrExpr, Parallel, Service, WorkerStrategy as ModelStrategy,
};
use crate::resolve::simplify::{Kind, Simplifier, integral};
use crate::resolve::{ExprOutcome, Problem, Scope};
use crate::shard::{
    DefaultDuration, ParallelCounts, PlanMethod, ShardPlan, ValueLists, WorkerAssignment, WorkerSet,
};
use crate::yaml::FieldPath;

use super::compile::Compiler;
use super::{
    PlanBalance, PlanExecute, PlanExecuteWorkflow, PlanExecution, PlanParallel, PlanRunTime,
    PlanService, PlanServiceInstance, PlanStrategy, PlanWorker, WorkerCounts,
};

/// Default `parallel.parallelism`.
const DEFAULT_PARALLELISM: i64 = 1000;
/// Default `execute.parallelism`.
const DEFAULT_EXECUTE_PARALLELISM: i64 = 100;

/// The workers of one fan-out, or why they are not known yet.
struct Fanout {
    strategy: PlanStrategy,
    set: Option<WorkerSet>,
    decided_at_run_time: Option<String>,
}

impl Fanout {
    fn counts(&self) -> Option<WorkerCounts> {
        self.set.as_ref().map(|set| WorkerCounts {
            shard_count: set.shard_count(),
            matrix_count: set.matrix_count(),
            count: set.len(),
        })
    }

    fn assignments(&self) -> Vec<WorkerAssignment> {
        self.set
            .as_ref()
            .map(WorkerSet::assignments)
            .unwrap_or_default()
    }

    fn note(&self, what: &str) -> Option<String> {
        self.set
            .as_ref()
            .filter(|set| set.is_empty())
            .map(|_| format!("0 {what}: the step passes without running any"))
    }
}

impl Compiler<'_> {
    /// A `parallel` block with its workers.
    pub(super) fn parallel(&mut self, parallel: &Parallel, path: &FieldPath) -> PlanParallel {
        let mut fanout = self.fanout(parallel.strategy(), path);
        let balance = match (&parallel.balance, fanout.set.as_mut()) {
            (Some(balance), Some(set)) => self.balance(balance, &fanout.strategy, set, path),
            _ => None,
        };
        let mut spec = parallel.worker_spec();
        spec.config.clear();
        let first = Compiler::block_step(parallel);
        let mut workers = Vec::new();
        for assignment in fanout.assignments() {
            let scope = worker_scope(&assignment);
            let mut simplifier = Simplifier::new(&scope);
            let worker_spec = simplifier.typed(&spec, Kind::Spec, path);
            let worker_first = first
                .as_ref()
                .and_then(|step| simplifier.typed(step, Kind::Step, path));
            let description = parallel
                .description
                .as_ref()
                .map(|text| simplifier.template(text, &path.child("description")));
            self.problems.extend(simplifier.into_problems());
            let Some(worker_spec) = worker_spec else {
                continue;
            };
            let root = self.root_with(&worker_spec, worker_first, path);
            let predicted_seconds = balance
                .as_ref()
                .and_then(|balance| balance.shard_seconds.get(assignment.shard_index).copied());
            workers.push(PlanWorker {
                index: assignment.index,
                shard_index: assignment.shard_index,
                matrix_index: assignment.matrix_index,
                matrix: assignment.matrix,
                shard: assignment.shard,
                description,
                predicted_seconds,
                pod: worker_spec.pod,
                root,
            });
        }
        let template = fanout
            .decided_at_run_time
            .is_some()
            .then(|| self.root_with(&spec, first.clone(), path));
        let run_time = fanout.decided_at_run_time.is_some().then(|| {
            Box::new(PlanRunTime {
                block: parallel.clone(),
                path: path.to_string(),
                working_dir: None,
                global_env: self.global_env.clone(),
                durations: if parallel.balance.is_some() {
                    self.options.run_time_durations()
                } else {
                    std::collections::BTreeMap::new()
                },
            })
        });
        PlanParallel {
            parallelism: int_value(parallel.parallelism.as_ref(), DEFAULT_PARALLELISM),
            fail_fast: parallel.fail_fast.unwrap_or(false),
            barrier: parallel.paused.unwrap_or(false),
            logs: parallel.logs.as_ref().map(|logs| logs.as_str().to_owned()),
            counts: fanout.counts(),
            note: fanout.note("workers"),
            strategy: std::mem::take(&mut fanout.strategy),
            balance,
            transfer: parallel.transfer.clone(),
            fetch: parallel.fetch.clone(),
            decided_at_run_time: fanout.decided_at_run_time,
            workers,
            template,
            run_time,
        }
    }

    /// A service with its instances.
    pub(super) fn service(
        &mut self,
        name: &str,
        service: &Service,
        path: &FieldPath,
    ) -> PlanService {
        let mut fanout = self.fanout(service.strategy(), path);
        let base = self.base_container();
        let container = |service: &Service| {
            crate::resolve::merge_containers(Some(base.clone()), Some(service.container()))
                .unwrap_or_default()
        };
        let mut instances = Vec::new();
        for assignment in fanout.assignments() {
            let scope = worker_scope(&assignment);
            let mut simplifier = Simplifier::new(&scope);
            let instance = simplifier.typed(service, Kind::Service, path);
            self.problems.extend(simplifier.into_problems());
            let Some(instance) = instance else { continue };
            instances.push(PlanServiceInstance {
                index: assignment.index,
                shard_index: assignment.shard_index,
                matrix_index: assignment.matrix_index,
                matrix: assignment.matrix,
                shard: assignment.shard,
                description: instance.description.clone(),
                container: Box::new(container(&instance)),
                shell: instance.shell.clone(),
            });
        }
        PlanService {
            name: name.to_owned(),
            container: Box::new(container(service)),
            shell: service.shell.clone(),
            readiness_probe: service.readiness_probe.clone(),
            timeout: service.timeout.as_ref().map(|t| t.as_str().to_owned()),
            logs: service.logs.as_ref().map(|logs| logs.as_str().to_owned()),
            restart_policy: service.restart_policy,
            content: service.content.clone(),
            pod: service.pod.clone(),
            transfer: service.transfer.clone(),
            counts: fanout.counts(),
            note: fanout.note("instances"),
            strategy: std::mem::take(&mut fanout.strategy),
            decided_at_run_time: fanout.decided_at_run_time,
            instances,
        }
    }

    /// An `execute` operation with its child executions.
    pub(super) fn execute(&mut self, execute: &Execute, path: &FieldPath) -> PlanExecute {
        let mut workflows = Vec::new();
        for (index, workflow) in execute.workflows.iter().enumerate() {
            let path = path.child("workflows").child(index);
            let mut fanout = self.fanout(workflow.strategy(), &path);
            let mut executions = Vec::new();
            for assignment in fanout.assignments() {
                let scope = worker_scope(&assignment);
                let mut simplifier = Simplifier::new(&scope);
                let config =
                    simplifier.typed(&workflow.config, Kind::Generic, &path.child("config"));
                let description = workflow
                    .description
                    .as_ref()
                    .map(|text| simplifier.template(text, &path.child("description")));
                self.problems.extend(simplifier.into_problems());
                executions.push(PlanExecution {
                    index: assignment.index,
                    shard_index: assignment.shard_index,
                    matrix_index: assignment.matrix_index,
                    matrix: assignment.matrix,
                    shard: assignment.shard,
                    description,
                    config: config.unwrap_or_default(),
                });
            }
            workflows.push(PlanExecuteWorkflow {
                name: workflow.name.clone(),
                selector: workflow.selector.clone(),
                counts: fanout.counts(),
                note: fanout.note("executions"),
                strategy: std::mem::take(&mut fanout.strategy),
                decided_at_run_time: fanout.decided_at_run_time,
                not_planned: [
                    ("tarball", !workflow.tarball.is_empty()),
                    ("target", workflow.target.is_some()),
                    ("executionName", workflow.execution_name.is_some()),
                    ("as", workflow.alias.is_some()),
                ]
                .into_iter()
                .filter(|(_, set)| *set)
                .map(|(field, _)| field.to_owned())
                .collect(),
                executions,
            });
        }
        PlanExecute {
            parallelism: int_value(execute.parallelism.as_ref(), DEFAULT_EXECUTE_PARALLELISM),
            is_async: execute.is_async.unwrap_or(false),
            workflows,
        }
    }

    /// Evaluates `matrix`, `shards`, `count` and `maxCount`, and plans the
    /// workers when all of them are known now.
    fn fanout(&mut self, strategy: ModelStrategy<'_>, path: &FieldPath) -> Fanout {
        let mut runtime: Vec<String> = Vec::new();
        let mut lists = |field: &str, map: &IndexMap<String, DynamicList>| {
            let mut shown = IndexMap::new();
            let mut values = ValueLists::new();
            for (key, list) in map {
                match list {
                    DynamicList::Static(items) => {
                        shown.insert(key.clone(), Value::Array(items.clone()));
                        values.insert(key.clone(), items.clone());
                    }
                    DynamicList::Expression(text) => match evaluate_now(text) {
                        Some(Value::Array(items)) => {
                            shown.insert(key.clone(), Value::Array(items.clone()));
                            values.insert(key.clone(), items);
                        }
                        _ => {
                            runtime.push(format!("`{field}.{key}` is `{text}`"));
                            shown.insert(key.clone(), Value::String(text.clone()));
                        }
                    },
                }
            }
            (shown, values)
        };
        let (matrix_shown, matrix) = lists("matrix", strategy.matrix);
        let (shards_shown, shards) = lists("shards", strategy.shards);
        let mut count_value = |field: &str,
                               value: Option<&IntOrExpr>|
         -> (Option<Value>, Option<u64>) {
            match value {
                None => (None, None),
                Some(IntOrExpr::Int(number)) => (
                    Some(Value::from(*number)),
                    self.non_negative(*number, field, path),
                ),
                Some(IntOrExpr::Expr(text)) => match evaluate_now(text).as_ref().and_then(integral)
                {
                    Some(number) => (
                        Some(Value::from(number)),
                        self.non_negative(number, field, path),
                    ),
                    None => {
                        runtime.push(format!("`{field}` is `{text}`"));
                        (Some(Value::String(text.clone())), None)
                    }
                },
            }
        };
        let (count_shown, count) = count_value("count", strategy.count);
        let (max_count_shown, max_count) = count_value("maxCount", strategy.max_count);
        let shown = PlanStrategy {
            matrix: matrix_shown,
            shards: shards_shown,
            count: count_shown,
            max_count: max_count_shown,
        };
        if !runtime.is_empty() {
            return Fanout {
                strategy: shown,
                set: None,
                decided_at_run_time: Some(format!("needs run-time data: {}", runtime.join(", "))),
            };
        }
        let set = match WorkerSet::plan(ParallelCounts { count, max_count }, matrix, shards) {
            Ok(set) => Some(set),
            Err(err) => {
                self.problems.push(
                    Problem::error("too-many-workers", err.to_string(), path)
                        .with_hint("lower `count`/`maxCount` or shrink the matrix"),
                );
                None
            }
        };
        Fanout {
            strategy: shown,
            set,
            decided_at_run_time: None,
        }
    }

    fn non_negative(&mut self, number: i64, field: &str, path: &FieldPath) -> Option<u64> {
        match u64::try_from(number) {
            Ok(number) => Some(number),
            Err(_) => {
                self.problems.push(
                    Problem::error(
                        "invalid-count",
                        format!("`{field}` is {number}: a worker count cannot be negative"),
                        &path.child(field),
                    )
                    .with_hint(format!("set `{field}` to 0 or more")),
                );
                Some(0)
            }
        }
    }

    /// `balance: {by: duration}`: splits one shard key by recorded durations.
    fn balance(
        &mut self,
        balance: &crate::model::Balance,
        strategy: &PlanStrategy,
        set: &mut WorkerSet,
        path: &FieldPath,
    ) -> Option<PlanBalance> {
        let balance_path = path.child("balance");
        let Some(key) = balance
            .key
            .clone()
            .or_else(|| strategy.shards.keys().next().cloned())
        else {
            self.problems.push(
                Problem::error(
                    "balance-without-shards",
                    "`balance` splits a `shards` list, but this block has no `shards`",
                    &balance_path,
                )
                .with_hint("add `shards: {key: [items...]}`, or remove `balance`"),
            );
            return None;
        };
        let default = match &balance.default {
            None => DefaultDuration::MeanOfKnown,
            Some(duration) => match duration.parse() {
                Ok(parsed) => DefaultDuration::Fixed(parsed.as_secs_f64()),
                Err(err) => {
                    self.problems.push(
                        Problem::error(
                            "invalid-duration",
                            err.to_string(),
                            &balance_path.child("default"),
                        )
                        .with_hint("write a duration such as `30s`, `2m` or `1h30m`"),
                    );
                    return None;
                }
            },
        };
        let options = self.options;
        let plan = match set.balance_shard_key(&key, |item| options.duration(item), &default) {
            Ok(plan) => plan?,
            Err(err) => {
                let keys: Vec<&str> = strategy.shards.keys().map(String::as_str).collect();
                self.problems.push(
                    Problem::error(
                        "unknown-shard-key",
                        err.to_string(),
                        &balance_path.child("key"),
                    )
                    .with_hint(format!("`balance.key` names one of: {}", keys.join(", "))),
                );
                return None;
            }
        };
        let fixed = matches!(default, DefaultDuration::Fixed(_));
        Some(plan_balance(&key, &plan, options.has_durations(), fixed))
    }
}

fn plan_balance(
    key: &str,
    plan: &ShardPlan,
    had_durations: bool,
    fixed_default: bool,
) -> PlanBalance {
    let items: usize = plan.shards().iter().map(|shard| shard.items().len()).sum();
    let contiguous = plan.method() == PlanMethod::ContiguousNoDurations;
    // Without any duration and without a fixed default, every prediction
    // would be a meaningless zero.
    let predicted = !contiguous || fixed_default;
    let note = if contiguous && !had_durations {
        "no durations recorded or given: the format's contiguous split is used".to_owned()
    } else if contiguous {
        "no recorded duration matches these items: the format's contiguous split is used".to_owned()
    } else {
        format!(
            "split by recorded duration: slowest worker ~{:.1}s, no split can beat {:.1}s",
            plan.makespan_seconds(),
            plan.lower_bound_seconds()
        )
    };
    let defaulted = plan.defaulted_items();
    PlanBalance {
        by: "duration".to_owned(),
        key: key.to_owned(),
        method: if contiguous { "contiguous" } else { "balanced" }.to_owned(),
        known_items: items - defaulted.min(items),
        defaulted_items: defaulted,
        default_seconds: plan.default_seconds().filter(|_| defaulted > 0),
        makespan_seconds: predicted.then(|| plan.makespan_seconds()),
        lower_bound_seconds: predicted.then(|| plan.lower_bound_seconds()),
        shard_seconds: if predicted {
            plan.shards().iter().map(|shard| shard.seconds()).collect()
        } else {
            Vec::new()
        },
        note,
    }
}

/// An expression evaluated with nothing known: a value when it is a
/// constant, `None` when it needs run-time data.
fn evaluate_now(text: &str) -> Option<Value> {
    match crate::resolve::eval_expression_now(text) {
        Some(ExprOutcome::Value(value)) => Some(value),
        _ => None,
    }
}

fn int_value(value: Option<&IntOrExpr>, default: i64) -> Value {
    match value {
        None => Value::from(default),
        Some(IntOrExpr::Int(number)) => Value::from(*number),
        Some(IntOrExpr::Expr(text)) => evaluate_now(text)
            .as_ref()
            .and_then(integral)
            .map_or_else(|| Value::String(text.clone()), Value::from),
    }
}

/// What a worker sees: `index`, `count`, `shardIndex`, `shardCount`,
/// `matrixIndex`, `matrixCount`, `matrix.<key>`, `shard.<key>`.
fn worker_scope(assignment: &WorkerAssignment) -> Scope {
    let matrix: Map<String, Value> = assignment
        .matrix
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let shard: Map<String, Value> = assignment
        .shard
        .iter()
        .map(|(key, values)| (key.clone(), Value::Array(values.clone())))
        .collect();
    Scope::new()
        .with("index", Value::from(assignment.index))
        .with("count", Value::from(assignment.count))
        .with("shardIndex", Value::from(assignment.shard_index))
        .with("shardCount", Value::from(assignment.shard_count))
        .with("matrixIndex", Value::from(assignment.matrix_index))
        .with("matrixCount", Value::from(assignment.matrix_count))
        .with("matrix", Value::Object(matrix))
        .with("shard", Value::Object(shard))
}
