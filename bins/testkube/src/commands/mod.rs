//! One module per subcommand; each turns validated arguments into library
//! calls and prints the result.

mod abort;
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
mod serve;
mod split;
mod validate;

use std::process::ExitCode;

use crate::cli::Command;

pub(crate) use get::block_on;
pub(crate) use render::load;

/// Runs one subcommand and returns the process exit code; with `--server`,
/// the commands that start and read runs ask that server.
pub(crate) fn dispatch(
    command: Command,
    server: Option<&str>,
    token: Option<String>,
) -> Result<ExitCode, CliError> {
    if let Some(server) = server.filter(|server| !server.is_empty()) {
        let remote = || crate::remote::Remote::new(server, token.clone());
        match &command {
            Command::Run(args) => return remote()?.run(args),
            Command::Rerun(args) => return remote()?.rerun(args),
            Command::Get(args) => return remote()?.get(&args.what),
            Command::Logs(args) => return remote()?.logs(args),
            Command::Artifacts(args) => return remote()?.artifacts(args),
            Command::Abort(args) => return remote()?.abort(args),
            Command::Resume(_) | Command::Serve(_) => {
                return Err(
                    CliError::usage("this command does not take --server").with_hint(
                        "POST /v1/test-workflow-executions/ID/resume resumes a run on a server",
                    ),
                );
            }
            _ => {}
        }
    }
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
        Command::Abort(args) => abort::run(args),
        Command::Serve(args) => serve::run(args),
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
