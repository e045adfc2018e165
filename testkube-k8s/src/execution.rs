//! Every object one execution of a plan creates, known before it runs:
//! the root worker's and those of each `parallel` block whose workers are
//! decided by the plan (recursively). What only the run decides (workers
//! from expressions over step outputs, `execute` children, which are
//! executions of their own, and service pods, whose templates the worker
//! renders) is named in [`ExecutionObjects::notes`].

use testkube_core::engine::protocol::{PROTOCOL_VERSION, WorkerTask};
use testkube_core::engine::{
    ExecutionInfo, ExecutionRequest, WorkerFiles, WorkerId, worker_variables,
};
use testkube_core::plan::{Operation, Plan, PlanStep};

use crate::manifest::{ManifestError, ManifestOptions, WorkerObjects, worker_objects};

/// The objects of one execution, in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionObjects {
    /// One entry per worker, the root worker first.
    pub workers: Vec<WorkerObjects>,
    /// What is created only at run time, for the reader.
    pub notes: Vec<String>,
}

/// The objects of an execution of `plan` as `request` (its id names them),
/// as a preview: `execution.scheduledAt` is the Unix epoch.
///
/// # Errors
/// [`ManifestError`] for the first worker that cannot be built.
pub fn execution_objects(
    plan: &Plan,
    request: &ExecutionRequest,
    options: &ManifestOptions,
) -> Result<ExecutionObjects, ManifestError> {
    let execution = ExecutionInfo {
        id: request.id.clone(),
        name: if request.name.is_empty() {
            format!("{}-{}", plan.workflow, request.number)
        } else {
            request.name.clone()
        },
        workflow: plan.workflow.clone(),
    };
    // A preview: the same input gives the same objects.
    let base = request.variables(&execution, std::time::SystemTime::UNIX_EPOCH);
    let mut objects = ExecutionObjects {
        workers: Vec::new(),
        notes: Vec::new(),
    };
    let mut next = 0;
    let root = WorkerId {
        path: "root".to_owned(),
        number: 0,
    };
    let mut pending = std::collections::VecDeque::from([(
        root,
        plan.root.clone(),
        base.clone(),
        plan.pod.clone(),
    )]);
    while let Some((worker, step, variables, pod)) = pending.pop_front() {
        let task = WorkerTask {
            version: PROTOCOL_VERSION,
            execution: execution.clone(),
            worker: worker.clone(),
            root: step,
            env: plan.global_env.clone(),
            variables,
            files: WorkerFiles::default(),
            barrier: false,
            containers: Default::default(),
            links: Default::default(),
        };
        objects.workers.push(worker_objects(
            &task,
            pod.as_ref(),
            plan.job.as_ref(),
            options,
        )?);
        let mut blocks = Vec::new();
        parallel_blocks(&task.root, &mut blocks);
        for (step, block) in blocks {
            if let Some(why) = &block.decided_at_run_time {
                objects.notes.push(format!(
                    "the workers of `{step}` ({}) are decided at run time: {why}",
                    worker.path
                ));
                continue;
            }
            let count = block.workers.len();
            for planned in &block.workers {
                next += 1;
                let id = WorkerId {
                    path: format!("{}/{step}/{}", worker.path, planned.index),
                    number: next,
                };
                let variables = worker_variables(&base, block, planned, count);
                let pod = planned.pod.clone().or_else(|| plan.pod.clone());
                pending.push_back((id, planned.root.clone(), variables, pod));
            }
        }
        collect_notes(&task.root, &mut objects.notes);
    }
    Ok(objects)
}

fn parallel_blocks<'a>(
    step: &'a PlanStep,
    found: &mut Vec<(&'a str, &'a testkube_core::plan::PlanParallel)>,
) {
    for operation in &step.operations {
        match operation {
            Operation::Parallel(block) => found.push((&step.id, block)),
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    parallel_blocks(child, found);
                }
            }
            _ => {}
        }
    }
}

fn collect_notes(step: &PlanStep, notes: &mut Vec<String>) {
    for operation in &step.operations {
        match operation {
            Operation::Execute(_) => notes.push(format!(
                "step `{}` starts child executions: each creates objects of its own",
                step.id
            )),
            Operation::StartServices { services } => {
                let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
                notes.push(format!(
                    "step `{}` starts services ({}): each instance is a pod the engine creates \
                     when the step starts, with its templates rendered by the worker",
                    step.id,
                    names.join(", ")
                ));
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    collect_notes(child, notes);
                }
            }
            _ => {}
        }
    }
}
