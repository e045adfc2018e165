//! `testkube abort ID`: aborts an execution that a `testkube run` in
//! another terminal is running (through its control socket, as `resume`
//! does); with `--server`, the server aborts it (see `crate::remote`).

use std::process::ExitCode;

use super::CliError;
use super::get::{block_on, find, open_store};
use super::run::control;
use crate::cli::AbortArgs;
use crate::style::{self, outln, paint};

pub(crate) fn run(args: AbortArgs) -> Result<ExitCode, CliError> {
    let record = block_on(async {
        let store = open_store().await?;
        find(&store, &args.id).await
    })?;
    if record.status.is_finished() {
        return Err(CliError::input(format!(
            "execution {} already finished ({})",
            record.name, record.status
        )));
    }
    control::send(&record.id, "abort").map_err(|err| {
        CliError::input(format!(
            "cannot reach the run of {} at {}: {err}",
            record.name,
            control::socket_path(&record.id).display()
        ))
        .with_hint(
            "abort it with Ctrl-C in the terminal that runs it, or use the same --home as that run",
        )
    })?;
    outln!("{} {}", paint(style::WARN, "aborting"), record.name);
    Ok(ExitCode::SUCCESS)
}
