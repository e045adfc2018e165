//! `kube-sim`: starts the Kubernetes API stand-in, writes a kubeconfig,
//! prints `ready` on stdout once it serves, and stops (killing every pod
//! process) on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// A Kubernetes API stand-in for tests: REST, watch, audit log, a Job
/// controller and a kubelet running containers with bubblewrap.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Write a kubeconfig for the server to this file.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Address to listen on (default: any free port on 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write an audit.k8s.io/v1 Event per request to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Keep pod folders (volumes, logs) here (default: a temporary folder).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Map an image to a folder: IMAGE=DIR (its entries appear at /ENTRY in the container).
    #[arg(long = "image", value_name = "IMAGE=DIR")]
    images: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kube-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut sim = kube_sim::KubeSim::new().listen(args.listen);
    if let Some(a) = &args.audit_log {
        sim = sim.audit_log(a);
    }
    if let Some(d) = &args.state_dir {
        sim = sim.state_dir(d);
    }
    for mapping in &args.images {
        let Some((image, dir)) = mapping.split_once('=') else {
            eprintln!("kube-sim: --image {mapping:?}: expected IMAGE=DIR, for example --image testkube/init=target/debug");
            return ExitCode::from(2);
        };
        if !std::path::Path::new(dir).is_dir() {
            eprintln!("kube-sim: --image {mapping:?}: {dir} is not a folder");
            return ExitCode::from(2);
        }
        sim = sim.image(image, dir);
    }
    let handle = match sim.start().await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = handle.write_kubeconfig(&args.kubeconfig) {
        eprintln!("kube-sim: cannot write the kubeconfig {}: {e}", args.kubeconfig.display());
        handle.shutdown().await;
        return ExitCode::FAILURE;
    }
    println!("ready");
    eprintln!("kube-sim: serving {} (kubeconfig {})", handle.url(), args.kubeconfig.display());
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-sim: cannot listen for SIGTERM: {e}");
            handle.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    handle.shutdown().await;
    ExitCode::SUCCESS
}
