//! `testkube resume ID`: resumes the paused steps of an execution that a
//! `testkube run` in another terminal is running.
//!
//! The running CLI watches `<home>/runs/<execution id>/resume` while the run
//! has paused steps (see `run`); this command only leaves that file, so it
//! needs no server and works for any run under the same home folder.

use std::process::ExitCode;

use testkube_core::status::ExecutionStatus;

use super::CliError;
use super::get::{block_on, find, open_store};
use crate::cli::ResumeArgs;
use crate::style::{self, outln, paint};

/// The file a running `testkube run` watches to resume its paused steps.
pub(crate) fn resume_file(execution_id: &str) -> std::path::PathBuf {
    crate::home::runs().join(execution_id).join("resume")
}

pub(crate) fn run(args: ResumeArgs) -> Result<ExitCode, CliError> {
    let record = block_on(async {
        let store = open_store().await?;
        find(&store, &args.id).await
    })?;
    if record.status != ExecutionStatus::Paused {
        return Err(CliError::usage(format!(
            "execution {} is {}, not paused",
            record.name, record.status
        ))
        .with_hint("only a run whose steps wait with `paused: true` can be resumed"));
    }
    let file = resume_file(&record.id);
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&file, b""));
    written.map_err(|err| {
        CliError::input(format!("cannot write {}: {err}", file.display()))
            .with_hint("check that the home folder is writable (--home DIR)")
    })?;
    outln!("{} {}", paint(style::OK, "resumed"), record.name);
    Ok(ExitCode::SUCCESS)
}
