//! Workers decided at run time: a `parallel` block whose `matrix`,
//! `shards`, `count` or `maxCount` need run-time data (`glob(...)`, a step
//! output, `env.*`) is planned without workers ([`PlanParallel::run_time`]
//! keeps the block as written). When the step runs, the worker's runner
//! evaluates those expressions and the engine calls [`decide_workers`] with
//! the values, which plans the workers with the same code as at plan time:
//! the format's worker-count rules, worker variables substituted into each
//! worker's steps, and `balance: {by: duration}` over the durations copied
//! into the plan. Nothing here runs anything or reads a store.

use serde_json::Value;

use crate::model::{DynamicList, IntOrExpr};
use crate::resolve::simplify::integral;
use crate::resolve::{Problem, to_diagnostics};
use crate::yaml::FieldPath;

use super::compile::Compiler;
use super::{PlanError, PlanOptions, PlanParallel, PlanStrategy};
use crate::Diagnostic;

/// Plans the workers of a block decided at run time, with `values`: the
/// block's [`PlanStrategy`] where every expression of `matrix`/`shards`
/// was replaced by the list it evaluated to, and `count`/`maxCount` by
/// their numbers (numeric strings, as step outputs are, are accepted).
///
/// Returns the block with its `workers`, `counts`, `balance` and `note`
/// filled in and `decided_at_run_time` cleared; a block that was decided
/// at plan time is returned as is.
///
/// # Errors
/// [`PlanError`] naming the field when a value is missing or of the wrong
/// type (`shards.file` is not a list, `count` is not a whole number), when
/// a count is negative or the block would have more workers than
/// [`crate::shard::MAX_WORKERS`], or when substituting worker variables
/// fails; [`PlanError::summary`] puts it in one line.
pub fn decide_workers(
    block: &PlanParallel,
    values: &PlanStrategy,
) -> Result<PlanParallel, PlanError> {
    if block.decided_at_run_time.is_none() {
        return Ok(block.clone());
    }
    let Some(run_time) = &block.run_time else {
        return Err(error(
            "not-decidable",
            "the block's workers are decided at run time, but the plan does not say how",
            "plan the workflow again with this version",
        ));
    };
    let at = |field: String| format!("{}.{field}", run_time.path);
    let mut model = run_time.block.clone();
    let mut problems = Vec::new();
    for (field, lists, decided) in [
        ("matrix", &mut model.matrix, &values.matrix),
        ("shards", &mut model.shards, &values.shards),
    ] {
        for (key, list) in lists.iter_mut() {
            let DynamicList::Expression(text) = list else {
                continue;
            };
            match decided.get(key) {
                Some(Value::Array(items)) => *list = DynamicList::Static(items.clone()),
                Some(other) => problems.push(
                    Diagnostic::error(
                        "not-a-list",
                        format!(
                            "`{field}.{key}` (`{text}`) gave {}, not a list",
                            shown(other)
                        ),
                    )
                    .with_path(at(format!("{field}.{key}")))
                    .with_hint(format!(
                        "make `{field}.{key}` an expression that gives a list, e.g. \
                         `glob(\"tests/*.py\")` or `split(step.prep.outputs.items, \",\")`"
                    )),
                ),
                None => problems.push(
                    Diagnostic::error(
                        "not-decided",
                        format!("`{field}.{key}` (`{text}`) was not evaluated"),
                    )
                    .with_path(at(format!("{field}.{key}"))),
                ),
            }
        }
    }
    for (field, count, decided) in [
        ("count", &mut model.count, &values.count),
        ("maxCount", &mut model.max_count, &values.max_count),
    ] {
        let Some(IntOrExpr::Expr(text)) = count else {
            continue;
        };
        match decided.as_ref().map(|value| (value, integral(value))) {
            Some((_, Some(number))) => *count = Some(IntOrExpr::Int(number)),
            Some((other, None)) => problems.push(
                Diagnostic::error(
                    "not-a-number",
                    format!(
                        "`{field}` (`{text}`) gave {}, not a whole number",
                        shown(other)
                    ),
                )
                .with_path(at(field.to_owned()))
                .with_hint(format!(
                    "make `{field}` an expression that gives a whole number"
                )),
            ),
            None => problems.push(
                Diagnostic::error(
                    "not-decided",
                    format!("`{field}` (`{text}`) was not evaluated"),
                )
                .with_path(at(field.to_owned())),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(PlanError {
            diagnostics: problems,
        });
    }

    // `glob()` gives absolute paths while reports often name files relative
    // to the working directory: an item's duration is found either way.
    let durations = run_time.durations.clone();
    let base = format!(
        "{}/",
        run_time
            .working_dir
            .as_deref()
            .unwrap_or("/data")
            .trim_end_matches('/')
    );
    let options = PlanOptions::new().with_durations(move |item| {
        durations.get(item).copied().or_else(|| {
            item.strip_prefix(base.as_str())
                .and_then(|relative| durations.get(relative).copied())
        })
    });
    let mut compiler = Compiler::new(&options, run_time.global_env.clone());
    let mut planned = compiler.parallel(&model, &FieldPath::new());
    if compiler.problems.iter().any(Problem::is_error) {
        let diagnostics = to_diagnostics(compiler.problems, None)
            .into_iter()
            .map(|diagnostic| {
                let path = match diagnostic.path() {
                    Some(inner) if !inner.is_empty() => at(inner.to_owned()),
                    _ => run_time.path.clone(),
                };
                diagnostic.with_path(path)
            })
            .collect();
        return Err(PlanError { diagnostics });
    }
    if let Some(reason) = planned.decided_at_run_time.take() {
        return Err(error(
            "not-decided",
            format!("the workers still cannot be decided: {reason}"),
            "give every `matrix`, `shards`, `count` and `maxCount` expression a value",
        ));
    }
    if run_time.durations.is_empty()
        && let Some(balance) = &mut planned.balance
        && balance.method == "contiguous"
    {
        // The plan-time note talks about `--timings`; at run time the
        // durations come from the plan.
        balance.note =
            "no recorded durations were given to the plan: the format's contiguous split is used"
                .to_owned();
    }
    // The same shape a block decided at plan time has.
    planned.run_time = None;
    planned.template = None;
    Ok(planned)
}

impl PlanError {
    /// The problems in one line, each with its field and hint, for step
    /// messages.
    #[must_use]
    pub fn summary(&self) -> String {
        self.diagnostics
            .iter()
            .map(|diagnostic| {
                let mut line = match diagnostic.path() {
                    Some(path) if !path.is_empty() => {
                        format!("{path}: {}", diagnostic.message())
                    }
                    _ => diagnostic.message().to_owned(),
                };
                if let Some(hint) = diagnostic.hint() {
                    line.push_str(" (");
                    line.push_str(hint);
                    line.push(')');
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn error(code: &'static str, message: impl Into<String>, hint: &str) -> PlanError {
    PlanError {
        diagnostics: vec![Diagnostic::error(code, message).with_hint(hint)],
    }
}

/// A value for a message, cut short.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::plan::{Operation, Plan, PlanStep};
    use crate::{LoadOptions, ResolveOptions, TemplateSet};

    fn plan(parallel: &str, options: &PlanOptions) -> Plan {
        let yaml = format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: t}}\n\
             spec:\n  steps:\n  - name: tests\n    parallel:\n{parallel}"
        );
        let file = crate::load_file("t.yaml", yaml.as_bytes(), &LoadOptions::default());
        assert!(!file.has_errors(), "{:?}", file.diagnostics);
        let workflow = file
            .documents
            .iter()
            .find_map(|doc| match &doc.document {
                Some(crate::Document::TestWorkflow(workflow)) => Some((**workflow).clone()),
                _ => None,
            })
            .expect("a workflow");
        let templates = TemplateSet::with_builtins().expect("builtins");
        let resolved = crate::resolve_workflow(&workflow, &templates, &ResolveOptions::new(), None)
            .expect("it resolves");
        crate::plan_workflow(resolved.workflow(), options).expect("it plans")
    }

    fn block(plan: &Plan) -> &PlanParallel {
        fn find(step: &PlanStep) -> Option<&PlanParallel> {
            step.operations
                .iter()
                .find_map(|operation| match operation {
                    Operation::Parallel(block) => Some(&**block),
                    Operation::Steps { steps } | Operation::Setup { steps } => {
                        steps.iter().find_map(find)
                    }
                    _ => None,
                })
        }
        find(&plan.root).expect("a parallel block")
    }

    fn with_files(block: &PlanParallel, files: &[&str]) -> PlanStrategy {
        let mut values = block.strategy.clone();
        values.shards.insert("file".to_owned(), json!(files));
        values
    }

    const SHARDED: &str = "      count: 2\n      shards: {file: 'glob(\"tests/*.py\")'}\n      \
                           description: 'files {{ join(shard.file, \",\") }}'\n      \
                           shell: 'pytest {{ join(shard.file, \" \") }}'\n";

    fn script(worker: &crate::plan::PlanWorker) -> String {
        serde_json::to_string(&worker.root).expect("json")
    }

    #[test]
    fn workers_are_planned_with_worker_variables_substituted() {
        let plan = plan(SHARDED, &PlanOptions::new());
        let block = block(&plan);
        assert!(block.decided_at_run_time.is_some());
        assert!(block.workers.is_empty());
        let decided =
            decide_workers(block, &with_files(block, &["a.py", "b.py", "c.py"])).expect("decided");
        assert_eq!(decided.decided_at_run_time, None);
        assert_eq!(decided.run_time, None);
        assert_eq!(decided.template, None);
        assert_eq!(decided.counts.map(|c| c.count), Some(2));
        assert_eq!(decided.workers.len(), 2);
        assert_eq!(
            decided.workers[0].shard["file"],
            vec![json!("a.py"), json!("b.py")]
        );
        assert_eq!(decided.workers[1].shard["file"], vec![json!("c.py")]);
        assert_eq!(
            decided.workers[1].description.as_deref(),
            Some("files c.py")
        );
        assert!(script(&decided.workers[0]).contains("pytest a.py b.py"));
        // Deciding again changes nothing.
        assert_eq!(
            decide_workers(&decided, &decided.strategy),
            Ok(decided.clone())
        );
    }

    #[test]
    fn balance_by_duration_uses_the_durations_copied_into_the_plan() {
        let balanced = format!("{SHARDED}      balance: {{by: duration}}\n");
        let durations = BTreeMap::from([
            ("a.py".to_owned(), 10.0),
            ("b.py".to_owned(), 10.0),
            ("c.py".to_owned(), 1.0),
            ("d.py".to_owned(), 1.0),
        ]);
        let plan = plan(
            &balanced,
            &PlanOptions::new().with_duration_map(durations.clone()),
        );
        let block = block(&plan);
        assert_eq!(
            block.run_time.as_ref().map(|rt| &rt.durations),
            Some(&durations)
        );
        // `glob()` gives absolute paths; the durations name `d.py` relative
        // to the working directory (`/data`) and the others as they are.
        let files = ["/data/a.py", "/data/b.py", "/data/c.py", "/data/d.py"];
        let durations = BTreeMap::from([
            ("/data/a.py".to_owned(), 10.0),
            ("/data/b.py".to_owned(), 10.0),
            ("/data/c.py".to_owned(), 1.0),
            ("d.py".to_owned(), 1.0),
        ]);
        let plan = self::plan(
            &balanced,
            &PlanOptions::new().with_duration_map(durations.clone()),
        );
        let block = self::block(&plan);
        let decided = decide_workers(block, &with_files(block, &files)).expect("decided");
        let balance = decided.balance.as_ref().expect("balanced");
        assert_eq!(balance.method, "balanced");
        assert_eq!(balance.known_items, 4);
        // The format's contiguous split would put both slow files together.
        for worker in &decided.workers {
            let slow = worker.shard["file"]
                .iter()
                .filter(|file| {
                    ["/data/a.py", "/data/b.py"].contains(&file.as_str().unwrap_or_default())
                })
                .count();
            assert_eq!(slow, 1, "{:?}", worker.shard);
            assert_eq!(worker.predicted_seconds, Some(11.0));
        }

        // Without durations: the contiguous split, saying why.
        let plan = self::plan(&balanced, &PlanOptions::new());
        let block = self::block(&plan);
        let decided = decide_workers(block, &with_files(block, &files)).expect("decided");
        let balance = decided.balance.as_ref().expect("balance noted");
        assert_eq!(balance.method, "contiguous");
        assert!(
            balance.note.contains("no recorded durations"),
            "{}",
            balance.note
        );
        assert_eq!(
            decided.workers[0].shard["file"],
            vec![json!("/data/a.py"), json!("/data/b.py")]
        );
    }

    #[test]
    fn run_time_durations_serve_a_lookup_that_cannot_be_listed() {
        let balanced = format!("{SHARDED}      balance: {{by: duration}}\n");
        let options = PlanOptions::new()
            .with_durations(|_| None)
            .with_run_time_durations(BTreeMap::from([("x.py".to_owned(), 3.0)]));
        let plan = plan(&balanced, &options);
        let durations = &block(&plan).run_time.as_ref().expect("run time").durations;
        assert_eq!(durations.get("x.py"), Some(&3.0));
        // Blocks without `balance` carry no durations.
        let plan = self::plan(SHARDED, &options);
        assert!(
            block(&plan)
                .run_time
                .as_ref()
                .expect("run time")
                .durations
                .is_empty()
        );
    }

    #[test]
    fn wrong_values_fail_naming_the_field() {
        let plan = plan(SHARDED, &PlanOptions::new());
        let block = block(&plan);
        let mut values = block.strategy.clone();
        values.shards.insert("file".to_owned(), json!("a.py"));
        let err = decide_workers(block, &values).expect_err("not a list");
        let summary = err.summary();
        assert!(summary.contains("`shards.file`"), "{summary}");
        assert!(summary.contains("not a list"), "{summary}");
        assert!(summary.contains("spec.steps[0].parallel"), "{summary}");

        let counted = plan_count("'env.N'");
        let mut values = block_of(&counted).strategy.clone();
        values.count = Some(json!("many"));
        let summary = decide_workers(block_of(&counted), &values)
            .expect_err("not a number")
            .summary();
        assert!(
            summary.contains("`count`") && summary.contains("whole number"),
            "{summary}"
        );

        values.count = Some(json!("20000"));
        let summary = decide_workers(block_of(&counted), &values)
            .expect_err("too many")
            .summary();
        assert!(summary.contains("10000"), "{summary}");

        values.count = Some(json!(-1));
        let summary = decide_workers(block_of(&counted), &values)
            .expect_err("negative")
            .summary();
        assert!(summary.contains("negative"), "{summary}");

        values.count = Some(json!("0"));
        let decided = decide_workers(block_of(&counted), &values).expect("zero workers");
        assert!(decided.workers.is_empty());
        assert!(decided.note.is_some());
    }

    fn plan_count(count: &str) -> Plan {
        plan(
            &format!("      count: {count}\n      shell: 'echo {{{{ index }}}}'\n"),
            &PlanOptions::new(),
        )
    }

    fn block_of(plan: &Plan) -> &PlanParallel {
        block(plan)
    }
}
