//! A custom executor plugged into the engine: every step runs through a
//! remote shell, `ssh HOST` when a host is given, so a workflow's steps
//! run on another machine while the engine, conditions, retries, outputs
//! and parallel fan-out stay on this one.
//!
//! It reuses the crate's [`StepRunner`] (which walks a worker's steps the
//! way Testkube's in-pod runner does) and only replaces the [`Launcher`],
//! the part that starts a step's process: that is the whole plugin.
//!
//! ```sh
//! cargo run --example ssh_executor                  # transport `sh -c` on this machine
//! cargo run --example ssh_executor -- build-box     # `ssh -o BatchMode=yes build-box`
//! ```
//!
//! With ssh, the workspace folders must exist at the same paths on the
//! host (a shared or synced folder): the runner writes content files and
//! reads `/testkube/outputs` locally.

use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use testkube_core::engine::{
    Engine, Event, ExecutionRequest, Executor, ExecutorError, WorkerControl, WorkerEvent,
    WorkerHandle, WorkerSpec,
};
use testkube_core::model::Document;
use testkube_core::plan::{PlanOptions, plan_workflow};
use testkube_core::resolve::{ResolveOptions, TemplateSet, resolve_workflow};
use testkube_core::status::Interruption;
use testkube_core::validate::load_file;
use testkube_core::yaml::LoadOptions;
use testkube_executors::runner::{
    Launcher, Process, ProcessEnd, RunnerConfig, StepOutput, StepRunner, StopSignal, WorkerPaths,
};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

const WORKFLOW: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: remote
spec:
  steps:
  - name: Where am I
    shell: echo "running on $(hostname) as $(id -un)"
  - name: Flaky on purpose
    retry: {count: 2}
    shell: test -f attempted || { touch attempted; exit 1; }
  - name: Matrix
    parallel:
      matrix: {python: ["3.11", "3.12"]}
      shell: echo "would test with python {{ matrix.python }}"
"#;

/// Runs every worker's steps through `transport` (e.g. `ssh HOST`).
struct RemoteShellExecutor {
    transport: Vec<String>,
    workspaces: std::path::PathBuf,
}

#[async_trait]
impl Executor for RemoteShellExecutor {
    fn name(&self) -> &str {
        "remote-shell"
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        let workspace = self
            .workspaces
            .join(&spec.execution.id)
            .join(spec.worker.number.to_string());
        // Steps see their folders where they are (no sandbox maps them to /data).
        let paths = WorkerPaths::new(&workspace, false);
        paths
            .create()
            .map_err(|err| ExecutorError::new(&spec.worker, err.to_string()))?;
        let (events, receiver) = mpsc::channel(256);
        let (interrupt, interrupted) = watch::channel(None);
        let launcher = Arc::new(RemoteShell {
            transport: self.transport.clone(),
        });
        tokio::spawn(async move {
            let runner = StepRunner::new(RunnerConfig {
                launcher,
                paths,
                events: events.clone(),
                orchestrator: spec.orchestrator,
                interrupt: interrupted,
                variables: spec.variables,
                // Steps that collect artifacts fail, saying so: this
                // executor keeps none (see `ArtifactStorage` to add them).
                artifacts: None,
            });
            let status = runner.run(&spec.root).await;
            let _ = events.send(WorkerEvent::Finished { status }).await;
        });
        Ok(WorkerHandle {
            events: Box::pin(ReceiverStream::new(receiver)),
            control: Arc::new(Stopper(interrupt)),
        })
    }
}

/// The launcher: one remote shell command per step.
struct RemoteShell {
    transport: Vec<String>,
}

#[async_trait]
impl Launcher for RemoteShell {
    async fn launch(
        &self,
        process: Process,
        output: StepOutput,
        mut stop: StopSignal,
    ) -> std::io::Result<ProcessEnd> {
        std::fs::create_dir_all(&process.working_dir)?;
        // One command line for the remote shell: cd, the env, then the step.
        let mut line = format!("cd {} &&", quote(&process.working_dir));
        for (name, value) in &process.env {
            line.push_str(&format!(" {name}={}", quote(value)));
        }
        for arg in &process.argv {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        let (program, args) = self
            .transport
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty transport"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .arg(line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pump = |mut pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>, out: StepOutput| async move {
            let mut buffer = vec![0; 16 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
                out.write(Bytes::copy_from_slice(&buffer[..n])).await;
            }
        };
        let stdout = child.stdout.take().map(|p| Box::new(p) as Box<_>);
        let stderr = child.stderr.take().map(|p| Box::new(p) as Box<_>);
        let pumps = async {
            tokio::join!(
                async {
                    if let Some(pipe) = stdout {
                        pump(pipe, output.clone()).await;
                    }
                },
                async {
                    if let Some(pipe) = stderr {
                        pump(pipe, output.clone()).await;
                    }
                }
            )
        };
        tokio::select! {
            (status, _) = async { tokio::join!(child.wait(), pumps) } => {
                Ok(ProcessEnd::Exited(status?.code().unwrap_or(-1)))
            }
            stop = stop.fired() => {
                child.kill().await?;
                Ok(StopSignal::end(stop))
            }
        }
    }
}

struct Stopper(watch::Sender<Option<Interruption>>);

#[async_trait]
impl WorkerControl for Stopper {
    async fn interrupt(&self, interruption: Interruption) {
        self.0.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(interruption);
            }
            first
        });
    }
}

/// Single quotes for a POSIX shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport = match std::env::args().nth(1) {
        Some(host) => vec!["ssh".into(), "-o".into(), "BatchMode=yes".into(), host],
        None => vec!["sh".into(), "-c".into()],
    };
    println!("transport: {}", transport.join(" "));
    let loaded = load_file("remote.yaml", WORKFLOW.as_bytes(), &LoadOptions::default());
    let Some(Document::TestWorkflow(workflow)) = &loaded.documents[0].document else {
        return Err("expected a TestWorkflow".into());
    };
    let resolved = resolve_workflow(
        workflow,
        &TemplateSet::with_builtins()?,
        &ResolveOptions::new(),
        None,
    )?;
    let plan = plan_workflow(resolved.workflow(), &PlanOptions::new())?;

    let executor = RemoteShellExecutor {
        transport,
        workspaces: std::env::temp_dir().join(format!("testkube-ssh-{}", std::process::id())),
    };
    let engine = Engine::new(Arc::new(executor));
    let mut running = engine.start(plan, ExecutionRequest::new("remote-1"))?;
    while let Some(event) = running.next_event().await {
        match event {
            Event::Step {
                worker,
                step,
                status,
                detail,
                ..
            } if step.depth > 0 => {
                println!(
                    "{status:<8} [{worker}] {} (attempt {})",
                    step.label(),
                    detail.attempt
                );
            }
            Event::Log { worker, chunk, .. } => {
                print!("  {worker} | {}", String::from_utf8_lossy(&chunk));
            }
            Event::Finished(summary) => {
                println!("{}: {}", summary.name, summary.status);
                if !summary.status.is_passed() {
                    return Err("the run did not pass".into());
                }
            }
            _ => {}
        }
    }
    Ok(())
}
