//! `testkube-init`: the entrypoint of every container of a testkube worker
//! pod. It runs the worker's steps with the same step runner as local
//! runs ([`testkube_executors::pod`]) and reports through its standard
//! output and termination message, the only channels a test pod has.
//!
//! - `testkube-init copy DEST`: copies this binary to DEST (the first,
//!   init container does this into the pod's shared tools volume, so that
//!   containers of any image can run it).
//! - `testkube-init run [--task FILE]`: runs the worker's task.
//! - `testkube-init reply ID`: stores the engine's reply to request ID
//!   (JSON on standard input); the engine runs it through `pods/exec`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use testkube_core::engine::protocol::{Reply, WorkerTask};
use testkube_core::status::Interruption;
use testkube_executors::pod::{self, PodLayout};

#[derive(Parser)]
#[command(
    name = "testkube-init",
    version,
    about = "Runs a testkube worker's steps inside a pod"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copies this program to DEST (executable).
    Copy {
        /// Where to.
        dest: PathBuf,
    },
    /// Runs the worker task.
    Run {
        /// The task file (JSON), as the engine wrote it.
        #[arg(long, default_value = pod::TASK_FILE)]
        task: PathBuf,
        /// Which of the pod's ordered containers this is (0 first).
        #[arg(long, default_value_t = 0)]
        container: usize,
        /// The folder that holds `/data`, `/tmp` and `/testkube` (`/` in a pod).
        #[arg(long, default_value = "/", hide = true)]
        root: PathBuf,
    },
    /// Stores the engine's reply to request ID, read from standard input.
    Reply {
        /// The request's id.
        id: u64,
        /// Where replies go.
        #[arg(long, default_value = pod::CONTROL_DIR, hide = true)]
        control_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Copy { dest } => copy_self(&dest),
        Command::Run {
            task,
            container,
            root,
        } => run(&task, container, root),
        Command::Reply { id, control_dir } => reply(id, &control_dir),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("testkube-init: {message}");
            ExitCode::from(2)
        }
    }
}

fn copy_self(dest: &Path) -> Result<ExitCode, String> {
    use std::os::unix::fs::PermissionsExt;
    let me = std::env::current_exe().map_err(|err| format!("cannot find this program: {err}"))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    std::fs::copy(&me, dest)
        .and_then(|_| std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)))
        .map_err(|err| format!("cannot copy {} to {}: {err}", me.display(), dest.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn run(task_file: &Path, container: usize, root: PathBuf) -> Result<ExitCode, String> {
    let bytes = std::fs::read(task_file)
        .map_err(|err| format!("cannot read the task {}: {err}", task_file.display()))?;
    let task = WorkerTask::from_json(&bytes).map_err(|err| err.to_string())?;
    let layout = if root == Path::new("/") {
        PodLayout::in_pod()
    } else {
        PodLayout {
            control_dir: root.join("testkube/.control"),
            termination_log: root.join(format!("termination-log-{container}")),
            relay_state: root.join("testkube/.state/relay.json"),
            root,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    runtime.block_on(async move {
        let (interrupt, interrupted) = tokio::sync::watch::channel(None);
        // Kubernetes stops a pod with SIGTERM (deletion, abort, eviction):
        // the running step ends `aborted` and the rest is reported before
        // the grace period ends.
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                let _ = interrupt.send(Some(Interruption::Abort));
            }
        });
        pod::run_task(
            task,
            container,
            &layout,
            Box::new(std::io::stdout()),
            interrupted,
        )
        .await
        .map_err(|err| err.to_string())
    })?;
    // The verdict travels in the log; a failed step is not a failed container
    // (later containers of the pod still run the steps that follow).
    Ok(ExitCode::SUCCESS)
}

fn reply(id: u64, control_dir: &Path) -> Result<ExitCode, String> {
    let mut text = Vec::new();
    std::io::stdin()
        .read_to_end(&mut text)
        .map_err(|err| format!("cannot read the reply: {err}"))?;
    let reply = Reply::from_json(&text).map_err(|err| err.to_string())?;
    pod::write_reply(control_dir, id, &reply)
        .map_err(|err| format!("cannot store the reply in {}: {err}", control_dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
