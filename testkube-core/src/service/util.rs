//! Small helpers of the run service: the planning notes it hands to
//! frontends, and masking what it stores.

use serde_json::Value;

use crate::engine::SecretMasker;
use crate::plan::{Operation, PlanParallel, PlanStep};

/// `1 worker`, `2 workers`: the word for `count`.
pub(crate) fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// One line per `balance: {by: duration}` block: how its shards were split
/// (`recorded` durations were in the store).
pub(crate) fn balance_notes(step: &PlanStep, recorded: usize) -> Vec<String> {
    let mut notes = Vec::new();
    visit_parallel(step, &mut |step, block| {
        let Some(balance) = &block.balance else {
            return;
        };
        let label = step.name.as_deref().unwrap_or(&step.id);
        if balance.method == "balanced" {
            notes.push(format!(
                "`{label}`: shards split by {} recorded {} ({} {} without history; {} in the store)",
                balance.known_items,
                plural(balance.known_items, "duration", "durations"),
                balance.defaulted_items,
                plural(balance.defaulted_items, "item", "items"),
                recorded
            ));
        } else if recorded == 0 {
            notes.push(format!(
                "`{label}`: no recorded durations yet, shards split evenly; the next run balances on this run's test reports"
            ));
        } else {
            notes.push(format!(
                "`{label}`: none of the {recorded} recorded durations matches a `{}` item, shards split evenly",
                balance.key
            ));
        }
    });
    notes
}

/// Calls `f` for every parallel block under `step` (workers included),
/// with the step that holds it.
pub fn visit_parallel(step: &PlanStep, f: &mut dyn FnMut(&PlanStep, &PlanParallel)) {
    for operation in &step.operations {
        match operation {
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    visit_parallel(child, f);
                }
            }
            Operation::Parallel(block) => {
                f(step, block);
                for worker in &block.workers {
                    visit_parallel(&worker.root, f);
                }
            }
            _ => {}
        }
    }
}

/// Replaces secrets in every string of `value`.
pub(crate) fn mask_strings(value: &mut Value, masker: &SecretMasker) {
    match value {
        Value::String(text) => *text = masker.mask_string(std::mem::take(text)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, masker)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, masker)),
        _ => {}
    }
}
