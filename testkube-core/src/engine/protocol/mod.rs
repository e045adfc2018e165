//! The worker protocol: what a worker runs ([`WorkerTask`]) and what it
//! reports ([`Frame`]s between its raw output), as bytes, so that the step
//! runner can run inside a pod and report to an engine elsewhere.
//!
//! Why a protocol of log lines: a test pod gets no network path to the
//! engine and no Kubernetes API permission, so everything it tells the
//! engine travels through what Kubernetes keeps anyway: the container's
//! log and its termination message. The runner writes each step's output
//! as it comes (so `kubectl logs` shows the tests' own output) and, between
//! those bytes, one line per [`Frame`]: `ESC ] 4242 ; tk1 ; <json> BEL`.
//! That is a terminal "operating system command" no terminal acts on, so a
//! person reading the log in a terminal sees only the tests' output.
//!
//! A frame always starts a line. When the step's output so far does not end
//! with a newline, the encoder writes one first and marks the frame (`tk1n`)
//! so the decoder drops it again: logs come back byte for byte.
//!
//! The engine answers a worker's [`Request`]s (a `parallel` block, an
//! `execute` step, a `paused` step, a start barrier, starting and stopping
//! a step's `services`) with a [`Reply`] it delivers into the worker's file
//! system (see the Kubernetes executor).
//!
//! Everything here is sans-IO: encoders write into buffers, decoders take
//! lines.

use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::executor::{ExecutionInfo, StepDetail, WorkerEvent, WorkerFiles, WorkerId, WorkerSpec};
use crate::model::EnvVar;
use crate::plan::PlanStep;
use crate::status::StepStatus;
use crate::store::TestCaseRecord;

mod lines;
mod links;
mod requests;
mod services;

pub use lines::{Decoded, LineDecoder, LineEncoder};
pub use links::ObjectLinks;
pub use requests::{Reply, Request};
pub use services::{
    ServiceAddress, ServiceInstanceSpec, ServicesOutcome, ServicesRequest, StopServicesRequest,
};

/// The protocol version this build speaks; a task or frame of another
/// version is refused with a message naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// The most bytes Kubernetes keeps of a container's termination message.
pub const MAX_TERMINATION_MESSAGE: usize = 4096;

/// Everything a worker runs, without the engine's callbacks: what an
/// executor ships to a pod (or any process) that runs the step runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerTask {
    /// [`PROTOCOL_VERSION`] of the engine that wrote it.
    pub version: u32,
    /// The execution the worker belongs to.
    pub execution: ExecutionInfo,
    /// The worker's identity within the execution.
    pub worker: WorkerId,
    /// The worker's step tree; its root has id `root`.
    pub root: PlanStep,
    /// Environment variables every container of the worker gets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Expression variables known for the worker (`config`, `execution`...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Value>,
    /// Files exchanged with the worker that started it.
    #[serde(default, skip_serializing_if = "WorkerFiles::is_empty")]
    pub files: WorkerFiles,
    /// Whether it waits at a start barrier ([`Request::Ready`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub barrier: bool,
    /// Which of the pod's ordered containers runs each step's command, by
    /// step id (0 first), and each step's `content.git` checkout, by
    /// [`WorkerTask::git_key`]; empty when one container runs them all.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, usize>,
    /// Signed URLs for its artifacts and exchange archives (set by the
    /// executor when it has a [`SignedStorage`](crate::engine::SignedStorage)).
    #[serde(default, skip_serializing_if = "ObjectLinks::is_empty")]
    pub links: ObjectLinks,
}

impl WorkerTask {
    /// The task of `spec`.
    #[must_use]
    pub fn from_spec(spec: &WorkerSpec) -> Self {
        WorkerTask {
            version: PROTOCOL_VERSION,
            execution: spec.execution.clone(),
            worker: spec.worker.clone(),
            root: spec.root.clone(),
            env: spec.env.clone(),
            variables: spec.variables.clone(),
            files: spec.files.clone(),
            barrier: spec.barrier,
            containers: BTreeMap::new(),
            links: ObjectLinks::default(),
        }
    }

    /// The key of step `step`'s `content.git` checkout in
    /// [`WorkerTask::containers`]: a checkout may run in a container of its
    /// own (an image that has `git`), apart from the step's command.
    #[must_use]
    pub fn git_key(step: &str) -> String {
        format!("{step}#git")
    }

    /// Reads a task written by [`WorkerTask::to_json`].
    ///
    /// # Errors
    /// [`ProtocolError`] when the text is not a task or of another version.
    pub fn from_json(text: &[u8]) -> Result<Self, ProtocolError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_slice(text)
            .map_err(|err| ProtocolError::Invalid(format!("not a worker task: {err}")))?;
        check_version(versioned.version)?;
        serde_json::from_slice(text)
            .map_err(|err| ProtocolError::Invalid(format!("not a worker task: {err}")))
    }

    /// The task as JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn check_version(version: u32) -> Result<(), ProtocolError> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ProtocolError::Version {
            found: version,
            expected: PROTOCOL_VERSION,
        })
    }
}

/// Why bytes could not be read as the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Another protocol version: engine and runner come from different
    /// builds.
    #[error(
        "worker protocol version {found} is not supported by this build (it speaks version \
         {expected}): use the testkube-init image of the same release as the engine"
    )]
    Version {
        /// The version found.
        found: u32,
        /// The version this build speaks.
        expected: u32,
    },
    /// Malformed.
    #[error("{0}")]
    Invalid(String),
}

/// One structured line of a worker's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Frame {
    /// The raw output that follows is step `step`'s.
    Log {
        /// The step id.
        step: String,
    },
    /// A step changed status ([`WorkerEvent::Step`]).
    #[serde(rename_all = "camelCase")]
    Step {
        /// The step id.
        step: String,
        /// The new status.
        status: StepStatus,
        /// When.
        at: DateTime<Utc>,
        /// The exit code of its command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// The attempt (1 for the first).
        #[serde(default)]
        attempt: u32,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A step output ([`WorkerEvent::Output`]).
    Output {
        /// The step id.
        step: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A collected artifact ([`WorkerEvent::Artifact`]).
    Artifact {
        /// The step id.
        step: String,
        /// Its path relative to the artifacts' working directory.
        path: String,
        /// Where it is kept.
        location: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The archive of an artifacts step was uploaded to the step's signed
    /// URL ([`ObjectLinks::artifacts`]): the engine files it and reports
    /// each artifact ([`WorkerEvent::Artifact`]).
    Uploaded {
        /// The step id.
        step: String,
        /// How many files the archive holds.
        files: u64,
        /// With `compress`: the artifact's name, kept as one archive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compress: Option<String>,
    },
    /// Test results of a report ([`WorkerEvent::TestCases`]).
    TestCases {
        /// The step id.
        step: String,
        /// The report's path.
        report: String,
        /// The cases.
        cases: Vec<TestCaseRecord>,
    },
    /// The workspace is ready or not ([`WorkerEvent::Initialized`]).
    Initialized {
        /// `passed` or `failed`.
        status: StepStatus,
        /// When.
        at: DateTime<Utc>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A notice ([`WorkerEvent::Notice`]).
    Notice {
        /// The message.
        message: String,
    },
    /// The worker is done ([`WorkerEvent::Finished`]).
    Finished {
        /// The status of its root.
        status: StepStatus,
    },
    /// The worker waits for the engine's [`Reply`] to this request.
    Request {
        /// A number unique within the worker, that names the reply.
        id: u64,
        /// What it asks for.
        request: Request,
    },
    /// The worker no longer waits for the reply to request `id` (the step
    /// that asked timed out): stop what it started.
    Cancel {
        /// The request.
        id: u64,
    },
    /// The worker read the reply to request `id`. An engine that reads the
    /// log again after a restart asks again only the requests without one.
    Answered {
        /// The request.
        id: u64,
    },
}

impl Frame {
    /// The frame of a worker event; `None` for [`WorkerEvent::Log`], whose
    /// bytes travel raw (see [`LineEncoder::log`]).
    #[must_use]
    pub fn from_event(event: &WorkerEvent) -> Option<Self> {
        Some(match event {
            WorkerEvent::Step {
                step,
                status,
                at,
                detail,
            } => Frame::Step {
                step: step.clone(),
                status: *status,
                at: DateTime::<Utc>::from(*at),
                exit_code: detail.exit_code,
                attempt: detail.attempt,
                message: detail.message.clone(),
            },
            WorkerEvent::Log { .. } => return None,
            WorkerEvent::Output { step, key, value } => Frame::Output {
                step: step.clone(),
                key: key.clone(),
                value: value.clone(),
            },
            WorkerEvent::Artifact {
                step,
                path,
                location,
                size,
            } => Frame::Artifact {
                step: step.clone(),
                path: path.clone(),
                location: location.clone(),
                size: *size,
            },
            WorkerEvent::TestCases {
                step,
                report,
                cases,
            } => Frame::TestCases {
                step: step.clone(),
                report: report.clone(),
                cases: cases.clone(),
            },
            WorkerEvent::Initialized {
                status,
                at,
                message,
            } => Frame::Initialized {
                status: *status,
                at: DateTime::<Utc>::from(*at),
                message: message.clone(),
            },
            WorkerEvent::Notice { message } => Frame::Notice {
                message: message.clone(),
            },
            WorkerEvent::Finished { status } => Frame::Finished { status: *status },
        })
    }

    /// The worker event of this frame; `None` for [`Frame::Log`],
    /// [`Frame::Request`], [`Frame::Cancel`] and [`Frame::Uploaded`], which
    /// are the protocol's own.
    #[must_use]
    pub fn into_event(self) -> Option<WorkerEvent> {
        Some(match self {
            Frame::Log { .. }
            | Frame::Request { .. }
            | Frame::Cancel { .. }
            | Frame::Answered { .. }
            | Frame::Uploaded { .. } => return None,
            Frame::Step {
                step,
                status,
                at,
                exit_code,
                attempt,
                message,
            } => WorkerEvent::Step {
                step,
                status,
                at: SystemTime::from(at),
                detail: StepDetail {
                    exit_code,
                    attempt,
                    message,
                },
            },
            Frame::Output { step, key, value } => WorkerEvent::Output { step, key, value },
            Frame::Artifact {
                step,
                path,
                location,
                size,
            } => WorkerEvent::Artifact {
                step,
                path,
                location,
                size,
            },
            Frame::TestCases {
                step,
                report,
                cases,
            } => WorkerEvent::TestCases {
                step,
                report,
                cases,
            },
            Frame::Initialized {
                status,
                at,
                message,
            } => WorkerEvent::Initialized {
                status,
                at: SystemTime::from(at),
                message,
            },
            Frame::Notice { message } => WorkerEvent::Notice { message },
            Frame::Finished { status } => WorkerEvent::Finished { status },
        })
    }
}

/// What a container leaves in its termination message: the verdicts of the
/// steps it finished, so that a worker's result survives a log that cannot
/// be read any more. At most [`MAX_TERMINATION_MESSAGE`] bytes: when the
/// steps do not fit, only the worker's status is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminationMessage {
    /// [`PROTOCOL_VERSION`].
    #[serde(rename = "v")]
    pub version: u32,
    /// The worker's status, when this container finished it.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<StepStatus>,
    /// Final statuses of the steps finished in this container.
    #[serde(rename = "s", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, StepStatus>,
}

impl TerminationMessage {
    /// The message as at most [`MAX_TERMINATION_MESSAGE`] bytes of JSON.
    #[must_use]
    pub fn encode(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        if text.len() <= MAX_TERMINATION_MESSAGE {
            return text;
        }
        let short = TerminationMessage {
            version: self.version,
            finished: self.finished,
            steps: BTreeMap::new(),
        };
        serde_json::to_string(&short).unwrap_or_default()
    }

    /// Reads a termination message.
    ///
    /// # Errors
    /// [`ProtocolError`] when it is not one of this version.
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        let message: TerminationMessage = serde_json::from_str(text.trim()).map_err(|err| {
            ProtocolError::Invalid(format!("not a worker termination message: {err}"))
        })?;
        check_version(message.version)?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::executor::ParallelOutcome;
    use crate::status::Interruption;

    #[test]
    fn tasks_of_another_version_are_refused() {
        let err = WorkerTask::from_json(br#"{"version": 9}"#).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::Version {
                found: 9,
                expected: PROTOCOL_VERSION
            }
        );
        assert!(err.to_string().contains("same release"));
    }

    #[test]
    fn termination_messages_fit_kubernetes_limit() {
        let mut message = TerminationMessage {
            version: PROTOCOL_VERSION,
            finished: Some(StepStatus::Passed),
            steps: BTreeMap::new(),
        };
        message.steps.insert("a".into(), StepStatus::Passed);
        assert_eq!(
            TerminationMessage::decode(&message.encode()).unwrap(),
            message
        );
        for index in 0..1000 {
            message
                .steps
                .insert(format!("step_{index}"), StepStatus::Failed);
        }
        let text = message.encode();
        assert!(text.len() <= MAX_TERMINATION_MESSAGE);
        let back = TerminationMessage::decode(&text).unwrap();
        assert_eq!(back.finished, Some(StepStatus::Passed));
        assert!(back.steps.is_empty());
    }

    #[test]
    fn replies_round_trip() {
        let reply = Reply::Released {
            interruption: Some(Interruption::Abort),
        };
        assert_eq!(Reply::from_json(reply.to_json().as_bytes()).unwrap(), reply);
        let mut links = ObjectLinks::default();
        links
            .get
            .insert("1/fetch-0.tar.gz".into(), "https://s3/x?sig".into());
        let reply = Reply::Parallel {
            outcome: ParallelOutcome {
                status: StepStatus::Passed,
                workers: vec![(
                    WorkerId {
                        path: "root/p/0".into(),
                        number: 1,
                    },
                    StepStatus::Passed,
                )],
                message: None,
            },
            links,
        };
        assert_eq!(Reply::from_json(reply.to_json().as_bytes()).unwrap(), reply);
        // Signed URLs are credentials: debug output names them only.
        assert!(!format!("{reply:?}").contains("sig"));
    }

    #[test]
    fn service_requests_and_replies_round_trip() {
        let request = Frame::Request {
            id: 3,
            request: Request::StartServices(Box::new(ServicesRequest {
                step: "api".into(),
                instances: vec![ServiceInstanceSpec {
                    name: "db".into(),
                    index: 0,
                    container: crate::model::ContainerConfig {
                        command: Some(vec!["/bin/sh".into(), "-c".into(), "serve".into()]),
                        ..Default::default()
                    },
                    readiness_probe: None,
                    restart_policy: None,
                    pod: None,
                    timeout_ms: 5000,
                    logs: true,
                }],
            })),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert!(json.contains(r#""kind":"startServices""#), "{json}");
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), request);
        let reply = Reply::Services(ServicesOutcome {
            addresses: vec![ServiceAddress {
                name: "db".into(),
                index: 0,
                ip: "10.0.0.7".into(),
            }],
            error: None,
            notes: vec!["ready".into()],
        });
        assert_eq!(Reply::from_json(reply.to_json().as_bytes()).unwrap(), reply);
    }
}
