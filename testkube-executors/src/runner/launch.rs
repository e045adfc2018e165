//! The one thing the step runner needs from where it runs: start a process
//! as a step, stream its output, and stop it (with everything it started)
//! on a timeout or an interruption. The local executor has two launchers
//! (plain processes, and a bubblewrap sandbox per worker); an in-pod runner
//! would use plain processes too.

use async_trait::async_trait;
use bytes::Bytes;
use testkube_core::status::Interruption;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use testkube_core::engine::WorkerEvent;

/// Starts steps' processes.
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Runs `process` to its end, sending its output to `output`, and stops
    /// it (its whole process group) when `stop` says so.
    ///
    /// # Errors
    /// [`std::io::Error`] when the process cannot be started.
    async fn launch(
        &self,
        process: Process,
        output: StepOutput,
        stop: StopSignal,
    ) -> std::io::Result<ProcessEnd>;

    /// Releases what the launcher holds (a sandbox) once the worker is done.
    async fn shutdown(&self) {}
}

/// A step's process, as the step sees the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables on top of the runner's own environment.
    pub env: Vec<(String, String)>,
    /// The working directory (created when missing), as the step sees it.
    pub working_dir: String,
}

/// How a step's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this code (128 + N when killed by signal N).
    Exited(i32),
    /// The deadline passed; the process group was killed.
    TimedOut,
    /// It was interrupted from outside; the process group was killed.
    Interrupted(Interruption),
}

/// Where a step's output goes: log events of the worker.
#[derive(Debug, Clone)]
pub struct StepOutput {
    pub(crate) step: String,
    pub(crate) events: mpsc::Sender<WorkerEvent>,
}

impl StepOutput {
    /// Sends one chunk of output.
    pub async fn write(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let _ = self
            .events
            .send(WorkerEvent::Log {
                step: self.step.clone(),
                chunk,
            })
            .await;
    }

    /// Sends one chunk from a thread that is not async.
    pub fn write_blocking(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let _ = self.events.blocking_send(WorkerEvent::Log {
            step: self.step.clone(),
            chunk,
        });
    }
}

/// When a process must stop: a deadline (the nearest `timeout` of the step
/// and its parents) and interruptions from outside.
#[derive(Debug, Clone)]
pub struct StopSignal {
    pub(crate) deadline: Option<Instant>,
    pub(crate) interrupt: watch::Receiver<Option<Interruption>>,
}

/// Why a [`StopSignal`] fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    Deadline,
    /// An interruption from outside.
    Interrupted(Interruption),
}

impl StopSignal {
    /// Waits until the process must stop.
    pub async fn fired(&mut self) -> Stop {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            let fired = self
                .interrupt
                .wait_for(Option::is_some)
                .await
                .ok()
                .map(|value| *value);
            match fired.flatten() {
                Some(interruption) => interruption,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => Stop::Deadline,
            interruption = interrupt => Stop::Interrupted(interruption),
        }
    }

    /// Whether it has already fired.
    #[must_use]
    pub fn check(&self) -> Option<Stop> {
        let interruption = *self.interrupt.borrow();
        if let Some(interruption) = interruption {
            return Some(Stop::Interrupted(interruption));
        }
        match self.deadline {
            Some(at) if at <= Instant::now() => Some(Stop::Deadline),
            _ => None,
        }
    }

    /// The process end for a stop.
    #[must_use]
    pub fn end(stop: Stop) -> ProcessEnd {
        match stop {
            Stop::Deadline => ProcessEnd::TimedOut,
            Stop::Interrupted(interruption) => ProcessEnd::Interrupted(interruption),
        }
    }
}
