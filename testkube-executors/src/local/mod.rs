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
//! ([`LocalExecutor::with_artifacts_dir`] moves the artifacts elsewhere;
//! [`LocalExecutor::with_artifact_store`] keeps them in an object store, e.g.
//! S3, under `<execution id>/<n>/...`.)
//!
//! Each worker gets one sandbox where those folders are mounted at
//! `/data`, `/tmp` and `/testkube` and the rest of the machine is
//! read-only, so workflows written for pods run unchanged (steps write
//! `/data/...` all the time); the sandbox dies with the process that
//! started it. It is built by bubblewrap (`bwrap` on `PATH`) or, without
//! it, by util-linux's `unshare` where the kernel lets users create user
//! namespaces (`namespace.rs`; checked once per process). When neither
//! works the executor refuses to start any worker, saying to install
//! bubblewrap and why ([`LocalExecutor::ready`]): running such workflows
//! as plain processes would fail halfway, at the first step writing
//! `/data`.
//!
//! Plain processes remain as an explicit choice ([`Sandbox::Off`]) for
//! workflows known not to touch those paths: paths in `workingDir` and
//! content files are mapped to the workspace, scripts find the outputs
//! folder in `$TESTKUBE_OUTPUTS` and a private `$TMPDIR`, and `setpriv
//! --pdeathsig` (where installed) plus a per-worker watchdog
//! (`watchdog.rs`) stop every step and service group when the runner
//! dies. Either way each step runs in its own process group, and the
//! whole group is stopped at the step's end, timeout or abort.
//!
//! Services run as background processes of the worker (sandboxed: each
//! instance in a sandbox of its own with the worker's mounts) on this
//! machine's network, so `services.<name>.<i>.ip` is `127.0.0.1` and two
//! instances (or two parallel workers' services) need different ports,
//! unlike pods. `resources.limits.memory` is enforced as a resource limit
//! and an allocation failure reported as likely out of memory; CPU limits
//! are not enforced (see `limits.rs` for why).

mod group;
pub(crate) mod host;
mod limits;
mod namespace;
mod sandbox;
mod secrets;
mod watchdog;

pub use secrets::{LocalSecrets, SecretsFileError};

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use object_store::ObjectStore;
use testkube_core::engine::{
    Executor, ExecutorError, Unsupported, WorkerControl, WorkerEvent, WorkerHandle, WorkerId,
    WorkerSpec,
};
use testkube_core::model::ContainerConfig;
use testkube_core::plan::{Operation, PlanStep};
use testkube_core::status::Interruption;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::runner::transfer::{FolderArchives, WorkerLink};
use crate::runner::{ArtifactStorage, Launcher, RunnerConfig, StepRunner, WorkerPaths};
use host::HostLauncher;
use namespace::Namespace;
use sandbox::{Jail, SandboxLauncher};

/// How much of a worker's event stream may wait for the engine: with log
/// events of at most [`MAX_LOG_CHUNK`](testkube_core::store::MAX_LOG_CHUNK)
/// bytes, 1 MiB per worker; a step printing faster than that drains waits.
const EVENT_BUFFER: usize = 16;

/// How steps are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sandbox {
    /// A sandbox: bubblewrap when `bwrap` is on `PATH`, else user
    /// namespaces (`unshare`); workers are refused when neither works.
    #[default]
    Auto,
    /// As if bubblewrap were not installed: user namespaces, or refused.
    Unshare,
    /// Never sandbox: plain processes in the workspace, for workflows that
    /// never touch `/data`, `/tmp` or `/testkube` in their scripts.
    Off,
}

/// How this executor isolates steps, decided when it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Isolation {
    Sandboxed(Jail),
    Plain,
    /// No sandbox can be built, and plain processes were not asked for.
    Unavailable(String),
}

/// Runs workers as local processes. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    runs_dir: PathBuf,
    /// How steps are isolated: decided on first use, once, and shared by
    /// clones (finding bubblewrap or probing user namespaces costs a process).
    isolation: Arc<OnceLock<Isolation>>,
    /// What [`LocalExecutor::with_sandbox`] asked for.
    sandbox: Sandbox,
    pdeathsig: Vec<String>,
    artifacts_dir: Option<PathBuf>,
    artifact_store: Option<ObjectStoreTarget>,
}

/// An object store for artifacts, and what its keys' locations start with.
#[derive(Clone)]
struct ObjectStoreTarget {
    store: Arc<dyn ObjectStore>,
    location_base: String,
}

impl std::fmt::Debug for ObjectStoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location_base)
    }
}

impl LocalExecutor {
    /// An executor keeping its workspaces under `runs_dir`, isolated as
    /// [`Sandbox::Auto`] says (see [`LocalExecutor::ready`]).
    #[must_use]
    pub fn new(runs_dir: impl Into<PathBuf>) -> Self {
        LocalExecutor {
            runs_dir: runs_dir.into(),
            isolation: Arc::default(),
            sandbox: Sandbox::Auto,
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
            artifact_store: None,
        }
    }

    /// The isolation chosen, deciding it on first use.
    fn isolation(&self) -> &Isolation {
        self.isolation.get_or_init(|| self.decide(self.sandbox))
    }

    fn decide(&self, sandbox: Sandbox) -> Isolation {
        let (bwrap, without) = match sandbox {
            Sandbox::Off => return Isolation::Plain,
            Sandbox::Auto => (find_program("bwrap"), "bubblewrap (bwrap) is not installed"),
            Sandbox::Unshare => (None, "bubblewrap was not asked for"),
        };
        if let Some(bwrap) = bwrap {
            return Isolation::Sandboxed(Jail::Bwrap(bwrap));
        }
        let what_to_do = match sandbox {
            Sandbox::Unshare => {
                "choose the default sandbox instead (TESTKUBE_SANDBOX=auto, or \
                 `Sandbox::Auto`) with bubblewrap installed"
            }
            _ => "install bubblewrap (e.g. `apt install bubblewrap`, `dnf install bubblewrap`)",
        };
        match Namespace::detect(&self.pdeathsig) {
            Ok(namespace) => Isolation::Sandboxed(Jail::Namespace(namespace)),
            Err(why) => Isolation::Unavailable(format!(
                "steps cannot run here: {without} and {why}. \
                 Steps write /data, /tmp and /testkube as they do in a pod, which needs a \
                 sandbox that puts the worker's folders at those paths; {what_to_do}"
            )),
        }
    }

    /// Keeps artifacts under `dir` (`<dir>/<execution id>/<worker>/...`)
    /// instead of the runs folder.
    #[must_use]
    pub fn with_artifacts_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.artifacts_dir = Some(dir.into());
        self
    }

    /// Keeps artifacts in `store` (e.g. S3) under `<execution id>/<worker>/...`;
    /// events and records say `location_base` + the key as where each one is
    /// (e.g. `s3://bucket/prefix/`). Wins over [`LocalExecutor::with_artifacts_dir`].
    #[must_use]
    pub fn with_artifact_store(
        mut self,
        store: Arc<dyn ObjectStore>,
        location_base: impl Into<String>,
    ) -> Self {
        self.artifact_store = Some(ObjectStoreTarget {
            store,
            location_base: location_base.into(),
        });
        self
    }

    /// Where the artifacts of execution `execution_id` are, for people: the
    /// folder ([`LocalExecutor::artifacts_dir`]), or the object store's
    /// location of the execution's prefix.
    #[must_use]
    pub fn artifacts_location(&self, execution_id: &str) -> String {
        match &self.artifact_store {
            Some(target) => format!("{}{execution_id}/", target.location_base),
            None => self.artifacts_dir(execution_id).display().to_string(),
        }
    }

    /// The folder holding the artifacts of execution `execution_id`, one
    /// sub-folder per worker, named as its workspace is.
    #[must_use]
    pub fn artifacts_dir(&self, execution_id: &str) -> PathBuf {
        match &self.artifacts_dir {
            Some(dir) => dir.join(execution_id),
            None => self.runs_dir.join(execution_id).join("artifacts"),
        }
    }

    /// Chooses how to isolate steps (the default is [`Sandbox::Auto`]).
    #[must_use]
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = sandbox;
        self.isolation = Arc::default();
        self
    }

    /// Whether steps run in a sandbox (bubblewrap or user namespaces).
    #[must_use]
    pub fn is_sandboxed(&self) -> bool {
        matches!(self.isolation(), Isolation::Sandboxed(_))
    }

    /// Whether steps run in a bubblewrap sandbox.
    #[must_use]
    pub fn uses_bubblewrap(&self) -> bool {
        matches!(self.isolation(), Isolation::Sandboxed(Jail::Bwrap(_)))
    }

    /// Whether workers can start; else why not and what to do, to refuse a
    /// run before it starts (a worker started anyway fails with the same
    /// message).
    ///
    /// # Errors
    /// The message when no sandbox can be built here and plain processes
    /// were not chosen.
    pub fn ready(&self) -> Result<(), String> {
        match self.isolation() {
            Isolation::Unavailable(why) => Err(why.clone()),
            _ => Ok(()),
        }
    }

    /// The workspace folder of worker `worker` (its path: `root`,
    /// `root/tests/2`) of execution `execution_id`: `workers/root`,
    /// `workers/root-tests-2`. Named by the path the live view, `get
    /// execution` and `logs --worker` show, so a folder is found by the name
    /// printed everywhere else.
    #[must_use]
    pub fn workspace(&self, execution_id: &str, worker: &str) -> PathBuf {
        self.runs_dir
            .join(execution_id)
            .join("workers")
            .join(WorkerId::folder_of(worker))
    }

    /// The folder of execution `execution_id`'s `transfer`/`fetch` archives.
    #[must_use]
    pub fn transfer_dir(&self, execution_id: &str) -> PathBuf {
        self.runs_dir.join(execution_id).join("transfer")
    }

    /// What the user is told once per execution about where steps run.
    fn isolation_notice(&self) -> String {
        match self.isolation() {
            Isolation::Sandboxed(Jail::Bwrap(_)) => {
                "steps run in a bubblewrap sandbox per worker: /data, /tmp and /testkube are \
                 the worker's folders, the rest of the machine is read-only"
            }
            Isolation::Sandboxed(Jail::Namespace(_)) => {
                "bubblewrap (bwrap) is not installed: steps run in a user namespace per worker \
                 (unshare): /data, /tmp and /testkube are the worker's folders, the rest of the \
                 machine is read-only, and steps run as root inside it (your user outside)"
            }
            Isolation::Plain | Isolation::Unavailable(_) => {
                "steps run as plain processes in the worker's folder (no sandbox): /data, /tmp \
                 and /testkube in workingDir and content paths are mapped to it, scripts find \
                 outputs at $TESTKUBE_OUTPUTS and must not write those paths themselves"
            }
        }
        .to_owned()
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
        let workspace = self.workspace(&spec.execution.id, &spec.worker.path);
        // Steps and services run in other folders: the paths they are given
        // ($TESTKUBE_OUTPUTS, $TMPDIR, working directories) must be absolute.
        let workspace = std::path::absolute(&workspace).unwrap_or(workspace);
        if let Isolation::Unavailable(why) = self.isolation() {
            return Err(ExecutorError::new(&spec.worker, why.clone()));
        }
        let paths = WorkerPaths::new(&workspace, self.is_sandboxed());
        paths.create().map_err(|err| {
            ExecutorError::new(
                &spec.worker,
                format!("cannot create {}: {err}", workspace.display()),
            )
        })?;
        let launcher: Arc<dyn Launcher> = match self.isolation() {
            Isolation::Sandboxed(jail) => Arc::new(
                SandboxLauncher::start(jail, &paths, &workspace.join("runner")).map_err(|err| {
                    ExecutorError::new(&spec.worker, format!("cannot start the sandbox: {err}"))
                })?,
            ),
            Isolation::Plain | Isolation::Unavailable(_) => {
                Arc::new(HostLauncher::new(self.pdeathsig.clone()))
            }
        };
        let artifacts = match &self.artifact_store {
            Some(target) => ArtifactStorage::new(
                Arc::clone(&target.store),
                format!("{}/{}/", spec.execution.id, spec.worker.folder()),
                target.location_base.clone(),
            ),
            None => ArtifactStorage::local(
                &self.artifacts_dir(&spec.execution.id),
                format!("{}/", spec.worker.folder()),
            )
            .map_err(|message| ExecutorError::new(&spec.worker, message))?,
        };
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let (interrupt, interrupted) = watch::channel(None);
        let mut notices: Vec<String> = (spec.worker.number == 0)
            .then(|| self.isolation_notice())
            .into_iter()
            .collect();
        if let Some(image) = first_image(&spec.root) {
            notices.push(format!(
                "images are not pulled locally: steps run with this machine's tools \
                 (`{image}` is ignored)"
            ));
        }
        let link = WorkerLink::from_spec(
            &spec,
            Arc::new(FolderArchives::new(self.transfer_dir(&spec.execution.id))),
        );
        tokio::spawn(async move {
            for message in notices {
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

/// The first image a command step of the worker names (not those of its
/// parallel workers: each is told on its own).
fn first_image(step: &PlanStep) -> Option<String> {
    step.operations
        .iter()
        .find_map(|operation| match operation {
            Operation::Run { container, .. } | Operation::Shell { container, .. } => {
                container.image.clone().filter(|image| !image.is_empty())
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                steps.iter().find_map(first_image)
            }
            _ => None,
        })
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
