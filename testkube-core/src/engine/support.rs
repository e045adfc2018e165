//! What a plan needs that cannot run yet: the engine refuses such a plan
//! with a clear "not supported yet: <feature>" before starting anything,
//! rather than running it differently from what the user wrote.

use super::executor::{Executor, Unsupported};
use crate::plan::{Operation, Plan, PlanStep};

/// Every unsupported feature of `plan`: the engine's own (services,
/// `execute`, paused steps, start barriers, `transfer`/`fetch`, workers
/// decided at run time) and what `executor` reports for each worker.
pub(crate) fn unsupported_features(plan: &Plan, executor: &dyn Executor) -> Vec<Unsupported> {
    let mut found = Vec::new();
    worker(&plan.root, executor, &mut found);
    found
}

fn worker(root: &PlanStep, executor: &dyn Executor, found: &mut Vec<Unsupported>) {
    found.extend(executor.unsupported(root));
    step(root, executor, found);
}

fn step(step: &PlanStep, executor: &dyn Executor, found: &mut Vec<Unsupported>) {
    let mut add = |feature: &str| {
        found.push(Unsupported {
            feature: feature.to_owned(),
            step: step.id.clone(),
        });
    };
    if step.paused {
        add("paused");
    }
    for operation in &step.operations {
        match operation {
            Operation::StartServices { .. } => add("services"),
            Operation::Execute(_) => add("execute"),
            Operation::Parallel(block) => {
                if block.barrier {
                    add("parallel.paused (start barrier)");
                }
                if !block.transfer.is_empty() {
                    add("parallel.transfer");
                }
                if !block.fetch.is_empty() {
                    add("parallel.fetch");
                }
                if let Some(reason) = &block.decided_at_run_time {
                    add(&format!("parallel workers decided at run time ({reason})"));
                }
            }
            _ => {}
        }
    }
    for operation in &step.operations {
        match operation {
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    self::step(child, executor, found);
                }
            }
            Operation::Parallel(block) => {
                for planned in &block.workers {
                    worker(&planned.root, executor, found);
                }
            }
            _ => {}
        }
    }
}
