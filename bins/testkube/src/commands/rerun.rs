//! `testkube rerun ID [--failed-only]`: runs a recorded execution again, as
//! a new execution of the same workflow, from what the store kept: the
//! resolved workflow (`snapshot`), its config and its tags. The file it
//! came from is not read again; `secret()` values are (they are never
//! stored). The run itself is `run`'s ([`Launch`]).
//!
//! `--failed-only` leaves out the `parallel` workers whose root step passed
//! (or was skipped) in the recorded execution; workers that failed, were
//! aborted, timed out or never ran are run again, and so is every step
//! outside parallel blocks (setup that the workers need, for instance).
//! Workers are matched by their place (`root/<step>/<index>`), and the plan
//! is made with the durations the original run's split used, so index `i`
//! holds the same shard as before. Blocks whose workers are only known at
//! run time run in full.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use testkube_core::model::TestWorkflow;
use testkube_core::plan::{Operation, Plan, PlanStep};
use testkube_core::store::{ExecutionRecord, ResultStore, StoreError};
use testkube_results::store::SqliteStore;

use super::CliError;
use super::render::plural;
use super::run::{DURATIONS_KEY, Launch};
use crate::cli::RerunArgs;

pub(crate) fn run(args: RerunArgs) -> Result<ExitCode, CliError> {
    let database = crate::home::database();
    if !database.is_file() {
        return Err(CliError::usage(format!(
            "no executions are recorded in {}",
            crate::home::dir().display()
        ))
        .with_hint("run a workflow first with `testkube run FILE`, or point --home at the folder that holds its results"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?;
    let (record, failed_only) = runtime.block_on(async {
        let store = SqliteStore::open(&database)
            .await
            .map_err(|err| CliError::input(err.to_string()))?;
        // A run whose process died is over (marked aborted): it may be rerun.
        let _ = store.recover_abandoned().await;
        let found = find(&store, &args.execution, args.failed_only).await;
        store.close().await;
        found
    })?;
    drop(runtime);

    let mut snapshot = record.snapshot.clone();
    if let Some(map) = snapshot.as_object_mut() {
        map.remove(DURATIONS_KEY);
    }
    let workflow: TestWorkflow = serde_json::from_value(snapshot).map_err(|err| {
        CliError::input(format!(
            "execution {} has no usable stored workflow: {err}",
            record.name
        ))
        .with_hint("run the workflow from its file with `testkube run FILE`")
    })?;
    let sensitive: Vec<&str> = workflow
        .spec
        .config
        .iter()
        .filter(|(_, schema)| schema.sensitive == Some(true))
        .map(|(name, _)| name.as_str())
        .collect();
    if !sensitive.is_empty() {
        return Err(CliError::usage(format!(
            "execution {} used sensitive config ({}), whose values are never stored",
            record.name,
            sensitive.join(", ")
        ))
        .with_hint("run it from its file again: testkube run FILE --config NAME=VALUE"));
    }
    let launch = Launch {
        workflow,
        source: format!("execution {}", record.name),
        config: record.config.clone(),
        secrets: Vec::new(),
        tags: record.tags.clone(),
        failed_only,
        catalog: super::run::Catalog::default(),
    };
    launch.run(&args.run)
}

async fn find(
    store: &dyn ResultStore,
    id_or_name: &str,
    failed_only: bool,
) -> Result<(ExecutionRecord, Option<FailedOnly>), CliError> {
    let record = store
        .find_execution(id_or_name)
        .await
        .map_err(|err| match err {
            StoreError::NotFound(_) => CliError::usage(format!(
                "no execution `{id_or_name}` is recorded"
            ))
            .with_hint(format!(
                "list them with `{}`",
                crate::home::command("get executions")
            )),
            other => CliError::input(other.to_string()),
        })?;
    if !record.status.is_finished() {
        return Err(CliError::usage(format!(
            "execution {} is still {}",
            record.name,
            record.status.as_str()
        ))
        .with_hint("wait until it ends (or abort it) and rerun it then"));
    }
    if !failed_only {
        return Ok((record, None));
    }
    let steps = store
        .steps(&record.id)
        .await
        .map_err(|err| CliError::input(err.to_string()))?;
    let passed = steps
        .iter()
        .filter(|step| step.status.is_success())
        .map(|step| (step.worker.clone(), step.step.clone()))
        .collect();
    let durations = record
        .snapshot
        .get(DURATIONS_KEY)
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default();
    let failed_only = FailedOnly {
        original: record.name.clone(),
        passed,
        durations,
    };
    Ok((record, Some(failed_only)))
}

/// What `--failed-only` keeps of a plan.
pub(crate) struct FailedOnly {
    /// The recorded execution's name, for messages.
    original: String,
    /// `(worker path, step id)` of every step that passed or was skipped.
    passed: BTreeSet<(String, String)>,
    /// The item durations the recorded run was planned with.
    durations: BTreeMap<String, f64>,
}

impl FailedOnly {
    /// The durations to plan with so that workers get the shards they had.
    pub(crate) fn durations(&self) -> &BTreeMap<String, f64> {
        &self.durations
    }

    /// Removes the workers that passed from every parallel block of `plan`;
    /// returns one line per block saying what runs.
    pub(crate) fn apply(&self, plan: &mut Plan) -> Vec<String> {
        let mut notes = Vec::new();
        self.narrow(&mut plan.root, "root", &mut notes);
        notes
    }

    fn narrow(&self, step: &mut PlanStep, worker: &str, notes: &mut Vec<String>) {
        let label = step.name.clone().unwrap_or_else(|| step.id.clone());
        let id = step.id.clone();
        for operation in &mut step.operations {
            match operation {
                Operation::Setup { steps } | Operation::Steps { steps } => {
                    for child in steps {
                        self.narrow(child, worker, notes);
                    }
                }
                Operation::Parallel(block) => {
                    let key = format!("{worker}/{id}");
                    if block.decided_at_run_time.is_some() {
                        notes.push(format!(
                            "`{label}`: its workers are decided at run time, so all of them run again"
                        ));
                        continue;
                    }
                    let total = block.workers.len();
                    block.workers.retain(|planned| {
                        let path = format!("{key}/{}", planned.index);
                        !self.passed.contains(&(path, planned.root.id.clone()))
                    });
                    let kept = block.workers.len();
                    if kept == 0 {
                        block.note = Some(format!("every worker passed in {}", self.original));
                    }
                    notes.push(format!(
                        "`{label}`: {kept} of {total} {} run again (the others passed in {})",
                        plural(total, "worker", "workers"),
                        self.original
                    ));
                    for planned in &mut block.workers {
                        let path = format!("{key}/{}", planned.index);
                        self.narrow(&mut planned.root, &path, notes);
                    }
                }
                _ => {}
            }
        }
    }
}
