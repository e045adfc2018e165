//! Worker events as execution events: a worker reports steps by id, the
//! engine's events carry where each step is in its worker's tree (name,
//! depth), and an unnamed step is shown by its command.

use std::collections::BTreeMap;

use super::event::{Event, StepRef};
use super::executor::{WorkerEvent, WorkerId};
use crate::plan::{Operation, PlanStep};

/// A worker event as an engine event.
pub(super) fn translate(
    worker: &WorkerId,
    steps: &BTreeMap<String, StepRef>,
    event: WorkerEvent,
) -> Event {
    let worker = worker.clone();
    match event {
        WorkerEvent::Step {
            step,
            status,
            at,
            detail,
        } => {
            let step = steps.get(&step).cloned().unwrap_or(StepRef {
                id: step,
                name: None,
                depth: 1,
            });
            Event::Step {
                worker,
                step,
                status,
                at,
                detail,
            }
        }
        WorkerEvent::Log { step, chunk } => Event::Log {
            worker,
            step,
            chunk,
        },
        WorkerEvent::Output { step, key, value } => Event::Output {
            worker,
            step,
            key,
            value,
        },
        WorkerEvent::Artifact {
            step,
            path,
            location,
            size,
        } => Event::Artifact {
            worker,
            step,
            path,
            location,
            size,
        },
        WorkerEvent::TestCases {
            step,
            report,
            mut cases,
        } => {
            for case in &mut cases {
                case.worker.clone_from(&worker.path);
            }
            Event::TestCases {
                worker,
                step,
                report,
                cases,
            }
        }
        WorkerEvent::Initialized {
            status,
            at,
            message,
        } => Event::Initialization {
            worker,
            status,
            at,
            message,
        },
        WorkerEvent::Notice { message } => Event::Notice {
            worker: Some(worker),
            message,
        },
        WorkerEvent::Finished { status } => Event::Worker {
            worker,
            status,
            description: None,
        },
    }
}

/// Names and depths of a worker's steps, by id (not descending into
/// parallel workers: they are workers of their own).
pub(super) fn step_index(root: &PlanStep) -> BTreeMap<String, StepRef> {
    fn visit(step: &PlanStep, depth: usize, out: &mut BTreeMap<String, StepRef>) {
        out.insert(
            step.id.clone(),
            StepRef {
                id: step.id.clone(),
                name: step.name.clone().or_else(|| command_label(step)),
                depth,
            },
        );
        for operation in &step.operations {
            if let Operation::Setup { steps } | Operation::Steps { steps } = operation {
                for child in steps {
                    visit(child, depth + 1, out);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, 0, &mut out);
    out
}

/// What an unnamed step shows: its command (the first line of its shell
/// script, whole: records and JSON keep it as it is; terminals shorten it),
/// as a terminal would, rather than a generated id.
fn command_label(step: &PlanStep) -> Option<String> {
    step.operations
        .iter()
        .find_map(|operation| match operation {
            Operation::Shell { script, .. }
            | Operation::Run {
                shell: Some(script),
                ..
            } => script
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(str::to_owned),
            Operation::Run { container, .. } => {
                let mut argv = container.command.clone().unwrap_or_default();
                argv.extend(container.args.clone().unwrap_or_default());
                (!argv.is_empty()).then(|| argv.join(" "))
            }
            _ => None,
        })
}
