//! `testkube render` (in progress).
use std::process::ExitCode;

use super::CliError;
use crate::cli::RenderArgs;

pub(crate) fn run(_args: RenderArgs) -> Result<ExitCode, CliError> {
    Err(CliError::usage("render is being built"))
}
