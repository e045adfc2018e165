//! `testkube`: the command line over the testkube libraries.
//!
//! This binary only parses arguments and wires library parts together; every
//! decision about what a workflow means lives in `testkube-core`, every report
//! format in `testkube-results`.

mod cli;
mod commands;
mod home;
mod input;
mod junit_out;
mod kubernetes;
mod live;
mod remote;
mod sandbox;
mod style;
mod timings;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // rustls on aws-lc-rs for every client this process makes (S3 artifacts).
    testkube_results::artifacts::install_tls_provider();
    let cli = cli::Cli::try_parse().unwrap_or_else(|err| cli::explain(err).exit());
    style::init(cli.color);
    home::init(cli.home);
    match commands::dispatch(cli.command, cli.server.as_deref(), cli.token) {
        Ok(code) => code,
        Err(err) => {
            style::print_error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
