//! `testkube plan` (in progress).
use std::process::ExitCode;

use super::CliError;
use crate::cli::PlanArgs;

pub(crate) fn run(_args: PlanArgs) -> Result<ExitCode, CliError> {
    Err(CliError::usage("plan is being built"))
}
