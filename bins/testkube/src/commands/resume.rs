//! `testkube resume ID`: resumes the paused steps of an execution that a
//! `testkube run` in another terminal is running.
//!
//! The running CLI listens on `<home>/runs/<execution id>/control.sock`
//! (see `run::control`); this command sends it `resume` and waits for its
//! answer, so it needs no server and works for any run under the same home
//! folder.

use std::process::ExitCode;

use testkube_core::status::ExecutionStatus;

use super::CliError;
use super::get::{block_on, find, open_store};
use super::run::control;
use crate::cli::ResumeArgs;
use crate::style::{self, outln, paint};

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
    control::send(&record.id, "resume").map_err(|err| {
        CliError::input(format!(
            "cannot reach the run of {} at {}: {err}",
            record.name,
            control::socket_path(&record.id).display()
        ))
        .with_hint("resume it in the terminal that runs it, with the same --home as that run")
    })?;
    outln!("{} {}", paint(style::OK, "resumed"), record.name);
    Ok(ExitCode::SUCCESS)
}
