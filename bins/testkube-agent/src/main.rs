//! `testkube-agent`: the in-cluster agent. It runs the
//! TestWorkflowExecutions created in its namespace as Jobs (the
//! [`ExecutionController`] of testkube-k8s, through the same run service as
//! `testkube run`), records them in the same store layout as the CLI (so
//! `testkube get executions --home DIR` reads them) and writes their status
//! back to the documents.
//!
//! `main` reads like kubert's runtime builder: parse the flags, start
//! logging, make the client, open the store, serve `/live` and `/ready`,
//! run the controller until SIGTERM or Ctrl-C, then stop. Everything with
//! behaviour lives in the libraries; this file only wires them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use testkube_core::service::{FirstOf, RunService, RunWarning, SecretSource};
use testkube_k8s::{
    ExecutionController, KubernetesExecutor, KubernetesSecrets, LeaderElector, ManifestOptions,
};
use testkube_results::store::{DB_FILE, SqliteStore};
use testkube_server::{Auth, ClusterDefinitions, Server, Tokens};

mod admin;

/// Runs the TestWorkflowExecutions of a namespace as Kubernetes Jobs.
#[derive(Debug, Parser)]
#[command(name = "testkube-agent", version)]
struct Args {
    /// The kubeconfig to use; without it, `KUBECONFIG`, `~/.kube/config`
    /// or (in a pod) the pod's service account.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The namespace whose TestWorkflowExecutions run (and where their
    /// Jobs go); default: the kubeconfig context's, or the pod's.
    #[arg(long, short = 'n', value_name = "NS", env = "TESTKUBE_NAMESPACE")]
    namespace: Option<String>,
    /// Where results are kept (the SQLite store, as the CLI's `--home`).
    #[arg(
        long,
        value_name = "DIR",
        env = "TESTKUBE_HOME",
        default_value = ".testkube"
    )]
    home: PathBuf,
    /// Where `/live` and `/ready` are served.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TESTKUBE_ADMIN_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    admin_addr: SocketAddr,
    /// The Lease replicas compete for: only its holder runs executions.
    #[arg(
        long,
        value_name = "NAME",
        env = "TESTKUBE_LEASE",
        default_value = "testkube-agent"
    )]
    lease: String,
    /// Seconds the Lease holds without renewal (a standby takes over a
    /// replica that vanished after this long).
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    lease_duration: u64,
    /// This replica's name in the Lease; default: `POD_NAME`, else the
    /// host name, with the process id.
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    identity: Option<String>,
    /// At stop, how long running executions may take to end `aborted`
    /// (their logs read, their Jobs deleted) before the agent exits.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    stop_grace: u64,
    /// Where the REST API is served (Testkube's paths, server-sent events,
    /// `/metrics`), by the Lease holder; needs `--tokens`. Not served when
    /// not given.
    #[arg(long, value_name = "ADDR", env = "TESTKUBE_API_ADDR")]
    api_addr: Option<SocketAddr>,
    /// The API's tokens: one `<token> <scope>[,<scope>]...` a line (scopes
    /// read, run, admin), mounted from a Secret.
    #[arg(long, value_name = "FILE", env = "TESTKUBE_TOKENS_FILE")]
    tokens: Option<PathBuf>,
    /// The image carrying `testkube-init` for worker pods.
    #[arg(long, value_name = "IMAGE", env = "TESTKUBE_INIT_IMAGE")]
    init_image: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(log_level())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// `TESTKUBE_LOG` (`error`, `warn`, `info`, `debug`, `trace`); `info` by
/// default.
fn log_level() -> tracing::Level {
    std::env::var("TESTKUBE_LOG")
        .ok()
        .and_then(|level| level.parse().ok())
        .unwrap_or(tracing::Level::INFO)
}

async fn run(args: Args) -> Result<(), String> {
    // rustls on aws-lc-rs for the API client (see STACK.md, "The TLS trap").
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // A bad tokens file stops the agent at start, not when it leads.
    let auth = match (&args.api_addr, &args.tokens) {
        (None, _) => None,
        (Some(_), None) => {
            return Err("--api-addr needs --tokens FILE (the API is never open without tokens in a cluster)".to_owned());
        }
        (Some(_), Some(path)) => Some(Auth::Tokens(
            Tokens::load(path).map_err(|err| err.to_string())?,
        )),
    };
    let config = kube_config(args.kubeconfig.as_deref()).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)
        .map_err(|err| format!("cannot make a Kubernetes client: {err}"))?;

    std::fs::create_dir_all(&args.home).map_err(|err| {
        format!(
            "cannot create the home folder {}: {err}",
            args.home.display()
        )
    })?;
    let store = SqliteStore::open(&args.home.join(DB_FILE))
        .await
        .map_err(|err| format!("cannot open the result store: {err}"))?;

    let mut manifest = ManifestOptions {
        namespace: namespace.clone(),
        ..ManifestOptions::default()
    };
    if let Some(image) = args.init_image {
        manifest.init_image = image;
    }
    let executor = KubernetesExecutor::new(client.clone(), manifest);
    let secrets: Arc<dyn SecretSource> = Arc::new(FirstOf(vec![Arc::new(KubernetesSecrets::new(
        client.clone(),
        &namespace,
    ))]));
    let service = RunService::new(Arc::new(executor))
        .with_store(Arc::new(store))
        .with_secrets(secrets)
        .with_warnings(log_warning);

    let health = admin::Health::default();
    let listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .map_err(|err| {
            format!(
                "cannot serve /live and /ready on {}: {err}",
                args.admin_addr
            )
        })?;
    tokio::spawn(admin::serve(listener, health.clone()));

    // Ready once the API server answers: the watch can then start.
    client
        .apiserver_version()
        .await
        .map_err(|err| format!("the Kubernetes API server does not answer: {err}"))?;
    health.set_ready(true);
    tracing::info!(namespace = %namespace, home = %args.home.display(), "testkube-agent started");

    // Only the Lease holder runs executions; the others wait as standbys
    // (ready: they are healthy, just not leading).
    let identity = args.identity.unwrap_or_else(default_identity);
    let elector = LeaderElector::new(client.clone(), &namespace, &args.lease, &identity)
        .with_lease_duration(std::time::Duration::from_secs(args.lease_duration));
    let mut shutdown = std::pin::pin!(shutdown_signal());
    tracing::info!(lease = %args.lease, identity = %identity, "waiting for the Lease");
    let leadership = tokio::select! {
        leadership = elector.acquire() => leadership,
        () = &mut shutdown => {
            tracing::info!("testkube-agent stopped (never led)");
            return Ok(());
        }
    };

    // Runs a previous process of this agent left running (it was killed,
    // its node lost) are taken over where their Jobs are: only the leader
    // does this, once it leads.
    let claimed = match service.claim_abandoned().await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!("cannot check for unfinished executions: {err}");
            Vec::new()
        }
    };
    // The API and the workflows' schedules start runs through the same
    // service (and Kubernetes executor) as the controller; only the Lease
    // holder serves the API and schedules.
    let definitions = Arc::new(ClusterDefinitions::new(client.clone(), &namespace));
    let server = Server::new(
        service.clone(),
        definitions,
        auth.clone().unwrap_or(Auth::Disabled),
    )
    .map_err(|err| err.to_string())?
    .with_executor_name("kubernetes");
    let schedules = {
        let server = server.clone();
        let file = args.home.join("schedules.json");
        tokio::spawn(async move { server.run_schedules(file).await })
    };
    let api = match (args.api_addr, auth) {
        (Some(addr), Some(_)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|err| format!("cannot serve the API on {addr}: {err}"))?;
            tracing::info!(%addr, "serving the REST API");
            Some(tokio::spawn(server.serve(listener, std::future::pending())))
        }
        _ => None,
    };
    let controller = Arc::new(ExecutionController::new(
        client,
        &namespace,
        Arc::new(service),
    ));
    if !claimed.is_empty() {
        tracing::info!(
            "taking over {} execution(s) a previous agent left running: {}",
            claimed.len(),
            claimed.join(", ")
        );
    }
    controller.recover(&claimed).await;
    let lost = std::sync::atomic::AtomicBool::new(false);
    let stop = async {
        tokio::select! {
            () = &mut shutdown => {}
            () = leadership.lost() => lost.store(true, std::sync::atomic::Ordering::SeqCst),
        }
    };
    let result = Arc::clone(&controller).run(stop).await;
    health.set_ready(false);
    schedules.abort();
    if let Some(api) = api {
        api.abort();
    }
    let aborted = controller
        .abort_runs(std::time::Duration::from_secs(args.stop_grace))
        .await;
    if aborted > 0 {
        tracing::warn!("aborted {aborted} run(s) at stop");
    }
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        // Another replica may lead now: stop at once rather than run
        // anything twice; Kubernetes restarts this one as a standby.
        return Err(format!(
            "lost the Lease `{}`: stopping so that only the new holder runs executions",
            args.lease
        ));
    }
    leadership.release().await;
    tracing::info!("testkube-agent stopped");
    result.map_err(|err| err.to_string())
}

/// `HOSTNAME` (a pod's name) with the process id, or `testkube-agent-PID`.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "testkube-agent".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The kubeconfig `path` names, or the inferred one (`KUBECONFIG`,
/// `~/.kube/config`, the pod's service account).
async fn kube_config(path: Option<&std::path::Path>) -> Result<kube::Config, String> {
    match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|err| format!("cannot read the kubeconfig {}: {err}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| format!("cannot use the kubeconfig {}: {err}", path.display()))
        }
        None => kube::Config::infer().await.map_err(|err| {
            format!(
                "cannot find a Kubernetes cluster: {err} (give one with --kubeconfig PATH, or run \
                 the agent in a pod)"
            )
        }),
    }
}

/// Completes at SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: stopping"),
        () = term => tracing::info!("SIGTERM: stopping"),
    }
}

fn log_warning(warning: RunWarning) {
    tracing::warn!("{warning}");
}
