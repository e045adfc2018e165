//! What a worker asks the engine for ([`Request`]) and the engine's answer
//! ([`Reply`]), carried in [`Frame::Request`](super::Frame::Request) and
//! delivered back into the worker (see the module above).

use serde::{Deserialize, Serialize};

use super::{ObjectLinks, ProtocolError, ServicesOutcome, ServicesRequest, StopServicesRequest};
use crate::engine::executor::{ExecuteOutcome, ExecuteRequest, ParallelOutcome, ParallelRequest};
use crate::status::Interruption;

/// What a worker asks the engine for: the [`Orchestrator`] calls, as data.
///
/// [`Orchestrator`]: crate::engine::Orchestrator
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Request {
    /// Run a `parallel` block ([`Reply::Parallel`]).
    Parallel(Box<ParallelRequest>),
    /// Run an `execute` step's children ([`Reply::Execute`]).
    Execute(Box<ExecuteRequest>),
    /// Step `step` is paused: answer once the execution is resumed
    /// ([`Reply::Released`]).
    Paused {
        /// The step id.
        step: String,
    },
    /// The worker is at its start barrier ([`Reply::Released`]).
    Ready,
    /// Start a step's service instances as pods and answer once they are
    /// ready ([`Reply::Services`]). Added to version 1: engines that
    /// cannot run services refuse such plans before anything starts.
    StartServices(Box<ServicesRequest>),
    /// Stop services a step started ([`Reply::Services`]).
    StopServices(StopServicesRequest),
}

/// The engine's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reply {
    /// How the `parallel` block ended, and the URLs to read what its
    /// workers left for `fetch`.
    Parallel {
        /// The block's outcome.
        #[serde(flatten)]
        outcome: ParallelOutcome,
        /// URLs of the workers' fetch archives ([`ObjectLinks::get`]).
        #[serde(default, skip_serializing_if = "ObjectLinks::is_empty")]
        links: ObjectLinks,
    },
    /// How the `execute` step's children ended.
    Execute(ExecuteOutcome),
    /// How starting or stopping services went.
    Services(ServicesOutcome),
    /// Go on (`None`), or why the run was stopped meanwhile.
    Released {
        /// The interruption, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interruption: Option<Interruption>,
    },
}

impl Reply {
    /// The reply as one line of JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a reply.
    ///
    /// # Errors
    /// [`ProtocolError::Invalid`] when the text is not a reply.
    pub fn from_json(text: &[u8]) -> Result<Self, ProtocolError> {
        serde_json::from_slice(text)
            .map_err(|err| ProtocolError::Invalid(format!("not a worker reply: {err}")))
    }
}
