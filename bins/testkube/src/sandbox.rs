//! Where `testkube run` runs steps: the local executor, isolated as
//! `TESTKUBE_SANDBOX` says, refused before the run when it cannot work.
//!
//! `auto` (the default): a sandbox per worker, bubblewrap when installed,
//! else the kernel's user namespaces (`unshare`). `unshare`: skip
//! bubblewrap. `off`: plain processes, an explicit choice for workflows
//! whose scripts never touch `/data`, `/tmp` or `/testkube` (steps that
//! do would fail halfway through the run, which is why it is not a
//! silent fallback).
//!
//! Artifacts go where `TESTKUBE_ARTIFACTS_URL` says: unset, the run's folder
//! (`<home>/runs/<execution>/artifacts/`); a folder path, there; `s3://BUCKET[/PREFIX]`,
//! S3-compatible storage set up by the `AWS_*` variables.

use testkube_executors::{LocalExecutor, Sandbox};
use testkube_results::artifacts::{ARTIFACTS_URL_VARIABLE, ArtifactStore, ArtifactsUrl};

use crate::commands::CliError;

/// The variable that chooses the isolation.
const VARIABLE: &str = "TESTKUBE_SANDBOX";

/// The executor for a run, or why no run can start here.
pub(crate) fn local_executor() -> Result<LocalExecutor, CliError> {
    let sandbox = match std::env::var(VARIABLE).as_deref() {
        Err(_) | Ok("" | "auto") => Sandbox::Auto,
        Ok("unshare") => Sandbox::Unshare,
        Ok("off") => Sandbox::Off,
        Ok(other) => {
            return Err(
                CliError::usage(format!("{VARIABLE}={other} is not a sandbox choice"))
                    .with_hint("use auto (bubblewrap, else unshare), unshare, or off"),
            );
        }
    };
    let executor = LocalExecutor::new(crate::home::runs()).with_sandbox(sandbox);
    let executor = with_artifacts(executor)?;
    executor.ready().map_err(|why| {
        CliError::usage(why).with_hint(format!(
            "if the workflow's scripts never write /data, /tmp or /testkube themselves, \
             {VARIABLE}=off runs steps as plain processes"
        ))
    })?;
    Ok(executor)
}

/// `executor` keeping artifacts where `TESTKUBE_ARTIFACTS_URL` says (unset: the runs folder).
fn with_artifacts(executor: LocalExecutor) -> Result<LocalExecutor, CliError> {
    let hint = format!(
        "{ARTIFACTS_URL_VARIABLE} takes a folder or s3://BUCKET[/PREFIX]; unset it to keep \
         artifacts under the home folder"
    );
    let url = ArtifactsUrl::from_env()
        .map_err(|err| CliError::usage(err.to_string()).with_hint(&hint))?;
    Ok(match url {
        None => executor,
        Some(ArtifactsUrl::Folder(dir)) => executor.with_artifacts_dir(dir),
        Some(url) => {
            let store = ArtifactStore::open(&url)
                .map_err(|err| CliError::usage(err.to_string()).with_hint(&hint))?;
            executor.with_artifact_store(store.object_store(), store.location_base())
        }
    })
}
