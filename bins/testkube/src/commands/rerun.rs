//! `testkube rerun ID [--failed-only]`: runs a recorded execution again, as
//! a new execution of the same workflow, from what the store kept (see
//! `testkube_core::service::RerunOptions` for what `--failed-only` runs).
//! The service builds the request; the run itself is `run`'s ([`Launch`]).

use std::process::ExitCode;

use testkube_core::service::{RerunOptions, ServiceError, rerun_request};
use testkube_core::store::ResultStore;
use testkube_results::store::SqliteStore;

use super::CliError;
use super::run::{Catalog, Launch};
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
    let options = RerunOptions::new().failed_only(args.failed_only);
    let request = runtime.block_on(async {
        let store = SqliteStore::open(&database)
            .await
            .map_err(|err| CliError::input(err.to_string()))?;
        // A run whose process died is over (marked aborted): it may be rerun.
        let _ = store.recover_abandoned().await;
        let found = rerun_request(&store, &args.execution, &options).await;
        store.close().await;
        found.map_err(|err| rerun_error(err, &args.execution))
    })?;
    drop(runtime);
    let launch = Launch {
        request,
        catalog: Catalog::default(),
    };
    launch.run(&args.run)
}

/// Why a recorded execution cannot run again, with what to do instead.
fn rerun_error(err: ServiceError, id_or_name: &str) -> CliError {
    match err {
        ServiceError::NotFound(_) => {
            CliError::usage(format!("no execution `{id_or_name}` is recorded")).with_hint(format!(
                "list them with `{}`",
                crate::home::command("get executions")
            ))
        }
        ServiceError::StillRunning { .. } => CliError::usage(err.to_string())
            .with_hint("wait until it ends (or abort it) and rerun it then"),
        ServiceError::UnusableSnapshot { .. } => CliError::input(err.to_string())
            .with_hint("run the workflow from its file with `testkube run FILE`"),
        ServiceError::SensitiveConfig { .. } => CliError::usage(err.to_string())
            .with_hint("run it from its file again: testkube run FILE --config NAME=VALUE"),
        other => CliError::input(other.to_string()),
    }
}
