//! A started run as a frontend sees it: its identity, its events for
//! rendering, a control to abort or resume it, and its summary.
//!
//! Why the service records on its own task: the store gets every event
//! whether or not the frontend reads them (a REST API client that only
//! polls, a cron trigger that only waits), and a frontend that sees
//! [`Event::Finished`] knows the store already holds the whole run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::engine::{Canceller, Event, ExecutionSummary};

/// A started run. Read its events with [`RunHandle::next_event`] (or
/// [`RunHandle::into_events`]) or just [`RunHandle::wait`] for the summary;
/// dropping it does not stop the run (use [`RunControl::abort`]).
#[derive(Debug)]
pub struct RunHandle {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) number: u64,
    pub(crate) workflow: String,
    pub(crate) events: mpsc::Receiver<Event>,
    pub(crate) control: RunControl,
    pub(crate) recorded: Arc<AtomicBool>,
}

impl RunHandle {
    /// The execution id (unique; names its folders and its record).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its display name: `WORKFLOW-N` when recorded, else its id.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its number for its workflow (1 when nothing is recorded).
    #[must_use]
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The workflow's name in the store.
    #[must_use]
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// Aborts or resumes the run; clone it freely (a Ctrl-C handler, a
    /// control socket, an API endpoint).
    #[must_use]
    pub fn control(&self) -> RunControl {
        self.control.clone()
    }

    /// Whether the store holds the run (so far): `false` when there is no
    /// store, it could not create the execution, or recording failed.
    #[must_use]
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::SeqCst)
    }

    /// The next event (masked, and already in the store); `None` after
    /// [`Event::Finished`].
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The events as a stream (see [`tokio_stream::StreamExt`]).
    #[must_use]
    pub fn into_events(self) -> ReceiverStream<Event> {
        ReceiverStream::new(self.events)
    }

    /// Drops every event until the end and returns the summary (`None` when
    /// the run ended without one, which the engine never does).
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
/// Cheap to clone; its children follow it.
#[derive(Debug, Clone)]
pub struct RunControl {
    pub(crate) canceller: Canceller,
}

impl RunControl {
    /// Aborts the run: running steps end `aborted`, the rest `skipped`, the
    /// execution `aborted`. Later calls do nothing.
    pub fn abort(&self) {
        self.canceller.abort();
    }

    /// Resumes every step that waits now (`paused: true`); steps that pause
    /// later wait for the next call.
    pub fn resume(&self) {
        self.canceller.resume();
    }
}
