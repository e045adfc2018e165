//! Running one worker's steps across the ordered containers of a pod.
//!
//! Steps that need another image (or other container settings) run in
//! another container of the same pod: Kubernetes runs a pod's init
//! containers one after the other, and every container runs the same step
//! runner. Each container walks the whole step tree, the same way:
//!
//! - a step an earlier container finished is not run again: its recorded
//!   status, exit code and outputs are restored silently, so conditions,
//!   group verdicts and `step.<id>.outputs` mean what they meant there;
//! - the steps of this container run as usual, and a step whose `running`
//!   an earlier container reported (a group still going on) is not
//!   reported again;
//! - at the first command of a later container, the container hands off:
//!   nothing more is run or reported, the [`RelayState`] is written to the
//!   shared `/testkube` volume and the container ends, so the next one
//!   picks up from there.
//!
//! What is restored is what the containers *before* this one did: a step
//! retried within this container runs its operations and sub-steps again,
//! except those an earlier container did (a `content.git` checkout the git
//! container made stays as it is).
//!
//! What a relay cannot carry: a step `retry` or `timeout` around steps of
//! different containers (the Kubernetes executor refuses the first, and a
//! timeout starts again in each container).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use testkube_core::status::StepStatus;

/// What the containers before this one did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayState {
    /// Steps finished, by id.
    #[serde(default)]
    pub done: BTreeMap<String, DoneStep>,
    /// Steps whose `running` was reported.
    #[serde(default)]
    pub started: BTreeSet<String>,
    /// Operations of unfinished steps already done (`<step>#<index>`).
    #[serde(default)]
    pub operations: BTreeSet<String>,
    /// What a command of a step left (its last attempt), by step id.
    #[serde(default)]
    pub attempts: BTreeMap<String, AttemptRecord>,
    /// Whether the worker's initialization ran (and was reported).
    #[serde(default)]
    pub initialized: bool,
}

/// A finished step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneStep {
    /// Its final status.
    pub status: StepStatus,
}

/// What the last attempt of a step's command left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// The exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Its outputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// The relay of one container: which container it is, which container runs
/// each command step, and the state it continues from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    container: usize,
    containers: BTreeMap<String, usize>,
    /// What the containers before this one did (never changes).
    inherited: RelayState,
    /// That, and what this container did: for the next one.
    state: RelayState,
    handed_off: bool,
}

impl Relay {
    /// Container `container` of a worker whose command steps run in the
    /// containers `containers` names (step id → container), continuing
    /// from `state`.
    #[must_use]
    pub fn new(container: usize, containers: BTreeMap<String, usize>, state: RelayState) -> Self {
        Relay {
            inner: Arc::new(Mutex::new(Inner {
                container,
                containers,
                inherited: state.clone(),
                state,
                handed_off: false,
            })),
        }
    }

    /// Reads the state an earlier container wrote (none for the first).
    ///
    /// # Errors
    /// A message when the file exists but cannot be read.
    pub fn load_state(path: &Path) -> Result<RelayState, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|err| format!("the runner state {} is not valid: {err}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(RelayState::default()),
            Err(err) => Err(format!(
                "cannot read the runner state {}: {err}",
                path.display()
            )),
        }
    }

    /// Writes the state for the next container (aside, then renamed).
    ///
    /// # Errors
    /// The I/O error that prevented it.
    pub fn save_state(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec(&self.lock().state)
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let scratch = path.with_extension("part");
        std::fs::write(&scratch, text)?;
        std::fs::rename(&scratch, path)
    }

    /// Whether this container stopped at a step of a later one.
    #[must_use]
    pub fn handed_off(&self) -> bool {
        self.lock().handed_off
    }

    pub(super) fn hand_off(&self) {
        self.lock().handed_off = true;
    }

    /// Whether what `key` names (a step's command by its id, or its
    /// checkout by [`WorkerTask::git_key`]) runs in a later container.
    ///
    /// [`WorkerTask::git_key`]: testkube_core::engine::protocol::WorkerTask::git_key
    pub(super) fn belongs_later(&self, key: &str) -> bool {
        let inner = self.lock();
        inner
            .containers
            .get(key)
            .is_some_and(|container| *container > inner.container)
    }

    pub(super) fn done(&self, step: &str) -> Option<(DoneStep, AttemptRecord)> {
        let inner = self.lock();
        let done = inner.inherited.done.get(step)?.clone();
        let attempt = inner
            .inherited
            .attempts
            .get(step)
            .cloned()
            .unwrap_or_default();
        Some((done, attempt))
    }

    /// Whether an earlier container initialized the worker.
    pub(super) fn initialized(&self) -> bool {
        self.lock().inherited.initialized
    }

    pub(super) fn mark_initialized(&self) {
        self.lock().state.initialized = true;
    }

    pub(super) fn started(&self, step: &str) -> bool {
        self.lock().inherited.started.contains(step)
    }

    /// Records a status reported for `step`.
    pub(super) fn reported(&self, step: &str, status: StepStatus) {
        let mut inner = self.lock();
        if status.is_finished() {
            inner
                .state
                .done
                .insert(step.to_owned(), DoneStep { status });
        } else if status == StepStatus::Running {
            inner.state.started.insert(step.to_owned());
        }
    }

    pub(super) fn record_attempt(
        &self,
        step: &str,
        exit_code: Option<i64>,
        outputs: &BTreeMap<String, String>,
    ) {
        self.lock().state.attempts.insert(
            step.to_owned(),
            AttemptRecord {
                exit_code,
                outputs: outputs.clone(),
            },
        );
    }

    pub(super) fn operation_done(&self, step: &str, index: usize) -> bool {
        self.lock()
            .inherited
            .operations
            .contains(&format!("{step}#{index}"))
    }

    pub(super) fn mark_operation_done(&self, step: &str, index: usize) {
        self.lock()
            .state
            .operations
            .insert(format!("{step}#{index}"));
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
