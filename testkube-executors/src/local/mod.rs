//! The local executor: runs each worker on this machine, in its own
//! workspace folder, sandboxed with bubblewrap when it is installed.
//!
//! Folders of one execution (under the runs folder given to
//! [`LocalExecutor::new`], e.g. `.testkube/runs`):
//!
//! ```text
//! <execution id>/workers/<n>/data       /data of worker n (0 is the root worker)
//!                           /tmp        /tmp
//!                           /testkube   /testkube (outputs/ holds step outputs)
//!                           /runner     step scripts and logs (sandbox only)
//! <execution id>/artifacts/<n>/...      artifacts collected by worker n
//! <execution id>/transfer/...           parallel transfer/fetch archives
//! ```
//!
//! ([`LocalExecutor::with_artifacts_dir`] moves the artifacts elsewhere.)
//!
//! With bubblewrap (`bwrap` on `PATH`), each worker gets one sandbox where
//! those folders are mounted at `/data`, `/tmp` and `/testkube` and the
//! rest of the machine is read-only, so workflows written for pods run
//! unchanged; the sandbox dies with the process that started it. Without
//! it, steps run as plain processes: paths in `workingDir` and content
//! files are mapped to the workspace, scripts find the outputs folder in
//! `$TESTKUBE_OUTPUTS` and a private `$TMPDIR`, and `setpriv --pdeathsig`
//! (where installed) plus a per-worker watchdog (`watchdog.rs`) stop
//! every step and service group when the runner dies. Either way each
//! step runs in its own process group, and the whole group is stopped at
//! the step's end, timeout or abort.
//!
//! Services run as background processes of the worker (sandboxed: each
//! instance in a sandbox of its own with the worker's mounts) on this
//! machine's network, so `services.<name>.<i>.ip` is `127.0.0.1` and two
//! instances (or two parallel workers' services) need different ports,
//! unlike pods. `resources.limits.memory` is enforced as a resource limit
//! and an allocation failure reported as likely out of memory; CPU limits
//! are not enforced (see `limits.rs` for why).

mod group;
mod host;
mod limits;
mod sandbox;
mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use testkube_core::engine::{
    Executor, ExecutorError, Unsupported, WorkerControl, WorkerEvent, WorkerHandle, WorkerSpec,
};
use testkube_core::model::ContainerConfig;
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::Interruption;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::runner::transfer::{FolderArchives, WorkerLink};
use crate::runner::{ArtifactStorage, Launcher, RunnerConfig, StepRunner, WorkerPaths};
use host::HostLauncher;
use sandbox::SandboxLauncher;

/// How much of a worker's event stream may wait for the engine: with log
/// events of at most [`MAX_LOG_CHUNK`](testkube_core::store::MAX_LOG_CHUNK)
/// bytes, 1 MiB per worker; a step printing faster than that drains waits.
const EVENT_BUFFER: usize = 16;

/// Whether steps run in a bubblewrap sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sandbox {
    /// Use bubblewrap when `bwrap` is on `PATH`.
    #[default]
    Auto,
    /// Never sandbox: plain processes in the workspace.
    Off,
}

/// Runs workers as local processes. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    runs_dir: PathBuf,
    bwrap: Option<PathBuf>,
    pdeathsig: Vec<String>,
    artifacts_dir: Option<PathBuf>,
}

impl LocalExecutor {
    /// An executor keeping its workspaces under `runs_dir`, sandboxed when
    /// bubblewrap is installed.
    #[must_use]
    pub fn new(runs_dir: impl Into<PathBuf>) -> Self {
        LocalExecutor {
            runs_dir: runs_dir.into(),
            bwrap: find_program("bwrap"),
            pdeathsig: find_program("setpriv")
                .map(|setpriv| {
                    vec![
                        setpriv.display().to_string(),
                        "--pdeathsig".to_owned(),
                        "KILL".to_owned(),
                        "--".to_owned(),
                    ]
                })
                .unwrap_or_default(),
            artifacts_dir: None,
        }
    }

    /// Keeps artifacts under `dir` (`<dir>/<execution id>/<worker>/...`)
    /// instead of the runs folder.
    #[must_use]
    pub fn with_artifacts_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.artifacts_dir = Some(dir.into());
        self
    }

    /// The folder holding the artifacts of execution `execution_id`, one
    /// sub-folder per worker number.
    #[must_use]
    pub fn artifacts_dir(&self, execution_id: &str) -> PathBuf {
        match &self.artifacts_dir {
            Some(dir) => dir.join(execution_id),
            None => self.runs_dir.join(execution_id).join("artifacts"),
        }
    }

    /// Chooses whether to sandbox.
    #[must_use]
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        if sandbox == Sandbox::Off {
            self.bwrap = None;
        }
        self
    }

    /// Whether steps run in a bubblewrap sandbox.
    #[must_use]
    pub fn is_sandboxed(&self) -> bool {
        self.bwrap.is_some()
    }

    /// The workspace folder of worker `number` of execution `execution_id`.
    #[must_use]
    pub fn workspace(&self, execution_id: &str, number: usize) -> PathBuf {
        self.runs_dir
            .join(execution_id)
            .join("workers")
            .join(number.to_string())
    }

    /// The folder of execution `execution_id`'s `transfer`/`fetch` archives.
    #[must_use]
    pub fn transfer_dir(&self, execution_id: &str) -> PathBuf {
        self.runs_dir.join(execution_id).join("transfer")
    }

    /// What the user is told once per execution about where steps run.
    fn isolation_notice(&self) -> String {
        match &self.bwrap {
            Some(_) => "steps run in a bubblewrap sandbox per worker: /data, /tmp and \
                        /testkube are the worker's folders, the rest of the machine is \
                        read-only"
                .to_owned(),
            None => "bubblewrap (bwrap) is not installed: steps run as plain processes in \
                     the worker's folder; /data, /tmp and /testkube in workingDir and content \
                     paths are mapped to it, scripts find outputs at $TESTKUBE_OUTPUTS \
                     (install bubblewrap to run workflows unchanged)"
                .to_owned(),
        }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &str {
        "local"
    }

    fn unsupported(&self, step: &PlanStep) -> Vec<Unsupported> {
        let mut found = Vec::new();
        unsupported_in(step, &mut found);
        found
    }

    async fn start(&self, spec: WorkerSpec) -> Result<WorkerHandle, ExecutorError> {
        let workspace = self.workspace(&spec.execution.id, spec.worker.number);
        // Steps and services run in other folders: the paths they are given
        // ($TESTKUBE_OUTPUTS, $TMPDIR, working directories) must be absolute.
        let workspace = std::path::absolute(&workspace).unwrap_or(workspace);
        let paths = WorkerPaths::new(&workspace, self.bwrap.is_some());
        paths.create().map_err(|err| {
            ExecutorError::new(
                &spec.worker,
                format!("cannot create {}: {err}", workspace.display()),
            )
        })?;
        let launcher: Arc<dyn Launcher> = match &self.bwrap {
            Some(bwrap) => Arc::new(
                SandboxLauncher::start(bwrap, &paths, &workspace.join("runner")).map_err(
                    |err| ExecutorError::new(&spec.worker, format!("cannot start bwrap: {err}")),
                )?,
            ),
            None => Arc::new(HostLauncher::new(self.pdeathsig.clone())),
        };
        let artifacts = ArtifactStorage::local(
            &self.artifacts_dir(&spec.execution.id),
            format!("{}/", spec.worker.number),
        )
        .map_err(|message| ExecutorError::new(&spec.worker, message))?;
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let (interrupt, interrupted) = watch::channel(None);
        let notice = (spec.worker.number == 0).then(|| self.isolation_notice());
        let link = WorkerLink::from_spec(
            &spec,
            Arc::new(FolderArchives::new(self.transfer_dir(&spec.execution.id))),
        );
        tokio::spawn(async move {
            if let Some(message) = notice {
                let _ = events.send(WorkerEvent::Notice { message }).await;
            }
            let runner = StepRunner::new(RunnerConfig {
                launcher,
                paths,
                events: events.clone(),
                orchestrator: spec.orchestrator,
                interrupt: interrupted,
                variables: spec.variables,
                artifacts: Some(artifacts),
            })
            .with_link(link);
            let status = runner.run(&spec.root).await;
            let _ = events.send(WorkerEvent::Finished { status }).await;
        });
        Ok(WorkerHandle {
            events: Box::pin(ReceiverStream::new(receiver)),
            control: Arc::new(LocalControl { interrupt }),
        })
    }
}

/// Stops a local worker: its runner stops the running step's group.
struct LocalControl {
    interrupt: watch::Sender<Option<Interruption>>,
}

#[async_trait]
impl WorkerControl for LocalControl {
    async fn interrupt(&self, interruption: Interruption) {
        self.interrupt.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(interruption);
                true
            } else {
                false
            }
        });
    }
}

/// What a local worker cannot run yet, in `step` and its sub-steps (not in
/// parallel workers: the engine asks about each of those).
fn unsupported_in(step: &PlanStep, found: &mut Vec<Unsupported>) {
    let mut add = |feature: &str| {
        found.push(Unsupported {
            feature: feature.to_owned(),
            step: step.id.clone(),
        });
    };
    for operation in &step.operations {
        match operation {
            Operation::Content { content } => {
                if content.oci.is_some() {
                    add("content.oci");
                }
                if content.files.iter().any(|file| file.content_from.is_some()) {
                    add("content.files[].contentFrom");
                }
            }
            Operation::Run { container, .. } | Operation::Shell { container, .. } => {
                container_features(container, &mut add);
            }
            Operation::StartServices { services } => {
                for service in services {
                    for feature in crate::runner::services::unsupported(service) {
                        add(&feature);
                    }
                    for instance in &service.instances {
                        container_features(&instance.container, &mut add);
                    }
                }
            }
            _ => {}
        }
    }
    for operation in &step.operations {
        if let Operation::Setup { steps } | Operation::Steps { steps } = operation {
            for child in steps {
                unsupported_in(child, found);
            }
        }
    }
}

fn container_features(container: &ContainerConfig, add: &mut impl FnMut(&str)) {
    if container.env.iter().any(|var| var.value_from.is_some()) {
        add("env[].valueFrom");
    }
    if !container.env_from.is_empty() {
        add("envFrom");
    }
}

/// The first `name` on `PATH` that is a file.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
