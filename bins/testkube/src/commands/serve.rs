//! `testkube serve`: the REST API (testkube-server) on this machine, over
//! the home folder's result store (or PostgreSQL when
//! `TESTKUBE_DATABASE_URL` is set) and the local executor, as `run` uses
//! them.
//!
//! Refused without `--tokens FILE` unless `--no-auth` is given and the
//! address is a loopback one: an API that starts processes is never open
//! to the network by accident.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use testkube_core::service::{RunService, SecretSource};
use testkube_core::store::ResultStore;
use testkube_executors::local::LocalSecrets;
use testkube_results::store::{PostgresStore, SqliteStore};
use testkube_server::{Auth, FolderDefinitions, Server, Tokens};

use super::CliError;
use crate::cli::ServeArgs;
use crate::style::{self, paint};

/// The variable naming a PostgreSQL database for the results.
const DATABASE_URL: &str = "TESTKUBE_DATABASE_URL";

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let address: SocketAddr = args.listen.parse().map_err(|_| {
        CliError::usage(format!("--listen {} is not an address", args.listen))
            .with_hint("give IP:PORT, e.g. --listen 127.0.0.1:8088 or --listen 0.0.0.0:8088")
    })?;
    let (auth, described) = auth(&args, address.ip())?;
    let executor = crate::sandbox::local_executor()?;
    let secrets = LocalSecrets::load(None, &crate::home::dir().join("secrets.yaml"))
        .map_err(|err| CliError::usage(err.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::input(format!("cannot start the runtime: {err}")))?;
    runtime.block_on(async move {
        let (store, where_stored) = store().await?;
        let service = RunService::new(Arc::new(executor))
            .with_secrets(Arc::new(secrets) as Arc<dyn SecretSource>)
            .with_store(store)
            .with_warnings(|warning| {
                anstream::eprintln!("{} {warning}", paint(style::WARN, "warning:"));
            });
        super::run::recover_abandoned(&service).await;
        let definitions = FolderDefinitions::new(crate::home::dir().join("definitions"))
            .with_read_only(args.workflows.clone());
        let server = Server::new(service, Arc::new(definitions), auth)
            .map_err(|err| CliError::input(err.to_string()))?
            .with_schedules(crate::home::dir().join("schedules.json"));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|err| {
                CliError::input(format!("cannot listen on {address}: {err}"))
                    .with_hint("pick a free port with --listen IP:PORT")
            })?;
        let bound = listener
            .local_addr()
            .map_err(|err| CliError::input(err.to_string()))?;
        anstream::eprintln!(
            "{} the API at http://{bound} ({described}; results in {where_stored}); Ctrl-C stops it",
            paint(style::OK, "serving"),
        );
        server
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|err| CliError::input(format!("the server stopped: {err}")))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The requests the server lets in, and how to say so.
fn auth(args: &ServeArgs, ip: IpAddr) -> Result<(Auth, String), CliError> {
    match (&args.tokens, args.no_auth) {
        (Some(_), true) => Err(CliError::usage("--tokens and --no-auth exclude each other")),
        (Some(path), false) => {
            let tokens = Tokens::load(path).map_err(|err| {
                CliError::usage(err.to_string()).with_hint(
                    "one token a line: `<token> <scope>[,<scope>]...` (scopes: read, run, admin)",
                )
            })?;
            Ok((
                Auth::Tokens(tokens),
                format!("tokens from {}", path.display()),
            ))
        }
        (None, true) if ip.is_loopback() => {
            Ok((Auth::Disabled, "no auth: loopback only".to_owned()))
        }
        (None, true) => Err(CliError::usage(format!(
            "--no-auth is only allowed on a loopback address, not {ip}"
        ))
        .with_hint("listen on 127.0.0.1, or give --tokens FILE")),
        (None, false) => Err(CliError::usage("the API needs tokens: give --tokens FILE")
            .with_hint("or --no-auth with a loopback --listen address, for this machine only")),
    }
}

/// The result store: PostgreSQL when `TESTKUBE_DATABASE_URL` is set, else
/// the home folder's SQLite file.
async fn store() -> Result<(Arc<dyn ResultStore>, String), CliError> {
    if let Ok(url) = std::env::var(DATABASE_URL)
        && !url.is_empty()
    {
        let store = PostgresStore::connect(&url).await.map_err(|err| {
            CliError::input(err.to_string()).with_hint(format!(
                "check {DATABASE_URL} (postgres://USER@HOST:PORT/DATABASE)"
            ))
        })?;
        return Ok((Arc::new(store), "PostgreSQL".to_owned()));
    }
    let path = crate::home::database();
    let store = SqliteStore::open(&path)
        .await
        .map_err(|err| CliError::input(err.to_string()))?;
    Ok((Arc::new(store), path.display().to_string()))
}
