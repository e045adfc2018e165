//! A started execution as its starter holds it: the events
//! ([`RunningExecution`]) and the controls ([`Canceller`]: abort, resume).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::event::{Event, ExecutionSummary};
use super::fanout;
use crate::status::Interruption;

/// A started execution: its events, and a way to stop it.
#[derive(Debug)]
pub struct RunningExecution {
    pub(super) events: mpsc::Receiver<Event>,
    pub(super) canceller: Canceller,
}

impl RunningExecution {
    /// The next event; `None` after [`Event::Finished`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// A handle that stops (e.g. on Ctrl-C) or resumes the execution.
    #[must_use]
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// The events as a stream (see [`tokio_stream::StreamExt`]).
    #[must_use]
    pub fn into_stream(self) -> ReceiverStream<Event> {
        ReceiverStream::new(self.events)
    }

    /// Drops every event until the end and returns the summary.
    pub async fn wait(mut self) -> Option<ExecutionSummary> {
        while let Some(event) = self.events.recv().await {
            if let Event::Finished(summary) = event {
                return Some(*summary);
            }
        }
        None
    }
}

/// Controls a running execution: stops it, or resumes its paused steps.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Canceller {
    stop: Arc<watch::Sender<Option<Interruption>>>,
    /// Counts resumes: a paused step goes on once it changes.
    resume: Arc<watch::Sender<u64>>,
}

impl Canceller {
    pub(super) fn new() -> (Self, watch::Receiver<Option<Interruption>>) {
        let (stop, stopped) = watch::channel(None);
        let (resume, _) = watch::channel(0);
        let canceller = Canceller {
            stop: Arc::new(stop),
            resume: Arc::new(resume),
        };
        (canceller, stopped)
    }

    /// Aborts the execution: running steps end `aborted`, the rest
    /// `skipped`, the execution `aborted`. Later calls do nothing.
    /// Child executions of `execute` steps are aborted too.
    pub fn abort(&self) {
        self.interrupt(Interruption::Abort);
    }

    /// Resumes every step that is `paused` now (steps with `paused: true`
    /// wait before they run until this is called; the execution is
    /// reported `paused` meanwhile). Steps that pause later wait for the
    /// next call. Child executions are resumed too.
    pub fn resume(&self) {
        self.resume.send_modify(|generation| *generation += 1);
    }

    pub(crate) fn interrupt(&self, interruption: Interruption) {
        fanout::set_once(&self.stop, interruption);
    }

    /// Receives every resume.
    pub(crate) fn resumes(&self) -> watch::Receiver<u64> {
        self.resume.subscribe()
    }
}
