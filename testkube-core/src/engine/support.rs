//! What a plan needs that cannot run yet: the engine refuses such a plan
//! with a clear "not supported yet: `<feature>`" before starting anything,
//! rather than running it differently from what the user wrote.

use super::executor::{Executor, Unsupported};
use crate::plan::{Operation, Plan, PlanStep};

/// Every unsupported feature of `plan`: the engine's own (service
/// instances decided at run time, `execute` without a [`ChildExecutions`](super::ChildExecutions) or with
/// children decided at run time) and what `executor` reports for each
/// worker (for parallel workers decided at run time: for the steps every
/// one of them runs).
pub(crate) fn unsupported_features(
    plan: &Plan,
    executor: &dyn Executor,
    children: bool,
) -> Vec<Unsupported> {
    let mut found = Vec::new();
    let check = Check { executor, children };
    worker(&plan.root, &check, &mut found);
    found
}

/// What the engine has to run a plan with.
struct Check<'a> {
    executor: &'a dyn Executor,
    /// Whether child executions can be started.
    children: bool,
}

fn worker(root: &PlanStep, check: &Check<'_>, found: &mut Vec<Unsupported>) {
    found.extend(check.executor.unsupported(root));
    step(root, check, found);
}

fn step(step: &PlanStep, check: &Check<'_>, found: &mut Vec<Unsupported>) {
    let mut add = |feature: &str| {
        found.push(Unsupported {
            feature: feature.to_owned(),
            step: step.id.clone(),
        });
    };
    for operation in &step.operations {
        match operation {
            Operation::StartServices { services } => {
                for service in services {
                    if let Some(reason) = &service.decided_at_run_time {
                        add(&format!(
                            "services.{} instances decided at run time ({reason})",
                            service.name
                        ));
                    }
                }
            }
            Operation::Execute(execute) => {
                if !check.children {
                    add("execute");
                }
                for workflow in &execute.workflows {
                    for field in &workflow.not_planned {
                        add(&format!("execute.workflows[].{field}"));
                    }
                    if let Some(reason) = &workflow.decided_at_run_time {
                        add(&format!("execute children decided at run time ({reason})"));
                    }
                }
            }
            _ => {}
        }
    }
    for operation in &step.operations {
        match operation {
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    self::step(child, check, found);
                }
            }
            Operation::Parallel(block) => {
                for planned in &block.workers {
                    worker(&planned.root, check, found);
                }
                // Workers decided at run time all run the template's steps.
                if let Some(template) = &block.template {
                    worker(template, check, found);
                }
            }
            _ => {}
        }
    }
}
