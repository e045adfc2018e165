//! One module per subcommand; each turns validated arguments into library
//! calls and prints the result.

mod artifacts;
mod crds;
mod get;
mod logs;
mod manifests;
mod plan;
mod render;
mod report;
mod rerun;
mod resume;
mod run;
mod split;
mod validate;

use std::process::ExitCode;

use crate::cli::Command;

/// Runs one subcommand and returns the process exit code.
pub(crate) fn dispatch(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Validate(args) => validate::run(args),
        Command::Render(args) => render::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Manifests(args) => manifests::run(args),
        Command::Crds => crds::run(),
        Command::Split(args) => split::run(args),
        Command::Report(args) => report::run(args),
        Command::Run(args) => run::run(args),
        Command::Rerun(args) => rerun::run(args),
        Command::Resume(args) => resume::run(args),
        Command::Get(args) => get::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Artifacts(args) => artifacts::run(args),
    }
}

/// A failure the user can act on: what went wrong, what to do, and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    hint: Option<String>,
    exit_code: u8,
}

impl CliError {
    /// A file or input that cannot be read or is not valid: exit 1.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            exit_code: 1,
        }
    }

    /// Arguments that do not make sense together, or an invalid workflow given
    /// to a command that needs a valid one: exit 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            exit_code: 2,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub(crate) fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| CliError::input(format!("cannot encode JSON: {err}")))?;
    crate::style::out(&text);
    crate::style::out("\n");
    Ok(())
}

/// Prints `value` as YAML on stdout.
pub(crate) fn print_yaml(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_saphyr::to_string(value)
        .map_err(|err| CliError::input(format!("cannot encode YAML: {err}")))?;
    crate::style::out(&text);
    Ok(())
}
