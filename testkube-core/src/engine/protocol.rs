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
//! `execute` step, a `paused` step, a start barrier) with a [`Reply`] it
//! delivers into the worker's file system (see the Kubernetes executor).
//!
//! Everything here is sans-IO: encoders write into buffers, decoders take
//! lines.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::executor::{
    ExecuteOutcome, ExecuteRequest, ExecutionInfo, ParallelOutcome, ParallelRequest, StepDetail,
    WorkerEvent, WorkerFiles, WorkerId, WorkerSpec,
};
use crate::model::EnvVar;
use crate::plan::PlanStep;
use crate::status::{Interruption, StepStatus};
use crate::store::TestCaseRecord;

/// The protocol version this build speaks; a task or frame of another
/// version is refused with a message naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// What starts a frame line (version 1).
const MARKER: &[u8] = b"\x1b]4242;tk1;";
/// What starts a frame line whose preceding newline the encoder added.
const MARKER_NEWLINE: &[u8] = b"\x1b]4242;tk1n;";
/// What starts a piece of a long frame that more pieces follow; the last
/// piece has an ordinary marker.
const MARKER_PIECE: &[u8] = b"\x1b]4242;tk1+;";
/// The first piece of a long frame, after a newline the encoder added.
const MARKER_PIECE_NEWLINE: &[u8] = b"\x1b]4242;tk1n+;";
/// The most JSON bytes on one line: the kubelet splits lines longer than
/// 16 KiB (and stamps each part), so a long frame (test results, a
/// `parallel` request) goes as several lines well below that.
const MAX_PIECE: usize = 8 * 1024;
/// What ends a frame line, before its newline.
const TERMINATOR: u8 = 0x07;

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
    /// step id (0 first); empty when one container runs them all.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, usize>,
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
        }
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
}

/// What a worker asks the engine for: the [`Orchestrator`] calls, as data.
///
/// [`Orchestrator`]: super::Orchestrator
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
}

/// The engine's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reply {
    /// How the `parallel` block ended.
    Parallel(ParallelOutcome),
    /// How the `execute` step's children ended.
    Execute(ExecuteOutcome),
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
    /// [`Frame::Request`] and [`Frame::Cancel`], which are the protocol's own.
    #[must_use]
    pub fn into_event(self) -> Option<WorkerEvent> {
        Some(match self {
            Frame::Log { .. } | Frame::Request { .. } | Frame::Cancel { .. } => return None,
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

/// Writes a worker's output and frames as one byte stream (a container's
/// stdout). Keeps frames on lines of their own.
#[derive(Debug, Default)]
pub struct LineEncoder {
    /// Whether the last byte written ended a line (or nothing was written).
    mid_line: bool,
    /// The step the raw output written last belongs to.
    log_step: Option<String>,
}

impl LineEncoder {
    /// A new encoder at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        LineEncoder::default()
    }

    /// Appends `event` to `out`: raw bytes for a log chunk (after a
    /// [`Frame::Log`] when the step changes), a frame line otherwise.
    pub fn event(&mut self, event: &WorkerEvent, out: &mut Vec<u8>) {
        match event {
            WorkerEvent::Log { step, chunk } => self.log(step, chunk, out),
            other => {
                if let Some(frame) = Frame::from_event(other) {
                    self.frame(&frame, out);
                }
            }
        }
    }

    /// Appends step `step`'s output.
    pub fn log(&mut self, step: &str, chunk: &[u8], out: &mut Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        if self.log_step.as_deref() != Some(step) {
            self.frame(
                &Frame::Log {
                    step: step.to_owned(),
                },
                out,
            );
            self.log_step = Some(step.to_owned());
        }
        out.extend_from_slice(chunk);
        self.mid_line = chunk.last() != Some(&b'\n');
    }

    /// Appends a frame: one line, or pieces of at most 8 KiB on lines of
    /// their own for a long one.
    pub fn frame(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        // JSON escapes every control character, so the terminator and the
        // newline never occur inside.
        let json = serde_json::to_vec(frame).unwrap_or_else(|_| b"{}".to_vec());
        let pieces: Vec<&[u8]> = json.chunks(MAX_PIECE).collect();
        let last = pieces.len().saturating_sub(1);
        for (index, piece) in pieces.into_iter().enumerate() {
            let newline = index == 0 && self.mid_line;
            if newline {
                out.push(b'\n');
            }
            out.extend_from_slice(match (newline, index < last) {
                (false, false) => MARKER,
                (true, false) => MARKER_NEWLINE,
                (false, true) => MARKER_PIECE,
                (true, true) => MARKER_PIECE_NEWLINE,
            });
            out.extend_from_slice(piece);
            out.push(TERMINATOR);
            out.push(b'\n');
        }
        self.mid_line = false;
    }
}

/// What a line of a worker's log was.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Output of step `step` (`None` before any [`Frame::Log`]).
    Log {
        /// The step.
        step: Option<String>,
        /// The bytes.
        chunk: Bytes,
    },
    /// A frame.
    Frame(Frame),
    /// A line that looked like a frame but was not one (a corrupted line,
    /// another protocol version): kept as output, with why.
    Invalid {
        /// The line.
        line: Bytes,
        /// Why it is not a frame.
        error: ProtocolError,
    },
}

/// Reads a worker's log line by line back into output and frames: the
/// inverse of [`LineEncoder`].
///
/// A newline ending a raw line is held back until the next line shows
/// whether the encoder added it; [`LineDecoder::finish`] releases it.
#[derive(Debug, Default)]
pub struct LineDecoder {
    step: Option<String>,
    held_newline: bool,
    /// The pieces of a long frame read so far.
    pieces: Vec<u8>,
}

impl LineDecoder {
    /// A new decoder at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        LineDecoder::default()
    }

    /// Decodes one line (with its `\n`, absent only on a last partial line).
    pub fn line(&mut self, line: &[u8]) -> Vec<Decoded> {
        let mut decoded = Vec::new();
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let piece = [(MARKER_PIECE, false), (MARKER_PIECE_NEWLINE, true)]
            .into_iter()
            .find_map(|(marker, newline)| Some((newline, body.strip_prefix(marker)?)));
        if let Some((marker_newline, rest)) = piece
            && let Some(json) = rest.strip_suffix(&[TERMINATOR])
        {
            if self.pieces.is_empty() && !marker_newline {
                self.release(&mut decoded);
            }
            self.held_newline = false;
            self.pieces.extend_from_slice(json);
            return decoded;
        }
        let (marker_newline, rest) = if let Some(rest) = body.strip_prefix(MARKER_NEWLINE) {
            (true, Some(rest))
        } else {
            (false, body.strip_prefix(MARKER))
        };
        if let Some(last) = rest.and_then(|rest| rest.strip_suffix(&[TERMINATOR])) {
            let whole;
            let json = if self.pieces.is_empty() {
                last
            } else {
                self.pieces.extend_from_slice(last);
                whole = std::mem::take(&mut self.pieces);
                &whole[..]
            };
            match serde_json::from_slice::<Frame>(json) {
                Ok(frame) => {
                    if !marker_newline {
                        self.release(&mut decoded);
                    }
                    self.held_newline = false;
                    if let Frame::Log { step } = &frame {
                        self.step = Some(step.clone());
                    }
                    decoded.push(Decoded::Frame(frame));
                    return decoded;
                }
                Err(err) => {
                    self.raw(line, &mut decoded);
                    decoded.push(Decoded::Invalid {
                        line: Bytes::copy_from_slice(body),
                        error: ProtocolError::Invalid(format!("not a worker frame: {err}")),
                    });
                    return decoded;
                }
            }
        }
        if body.starts_with(b"\x1b]4242;tk") && !body.starts_with(b"\x1b]4242;tk1") {
            decoded.push(Decoded::Invalid {
                line: Bytes::copy_from_slice(body),
                error: ProtocolError::Invalid(
                    "a frame of another worker protocol version: use the testkube-init image \
                     of the same release as the engine"
                        .to_owned(),
                ),
            });
        }
        self.raw(line, &mut decoded);
        decoded
    }

    /// Releases a held newline: call at the end of the stream.
    pub fn finish(&mut self) -> Vec<Decoded> {
        let mut decoded = Vec::new();
        self.release(&mut decoded);
        decoded
    }

    fn raw(&mut self, line: &[u8], decoded: &mut Vec<Decoded>) {
        let (body, newline) = match line.strip_suffix(b"\n") {
            Some(body) => (body, true),
            None => (line, false),
        };
        let mut chunk = Vec::with_capacity(body.len() + 1);
        if self.held_newline {
            chunk.push(b'\n');
        }
        chunk.extend_from_slice(body);
        self.held_newline = newline;
        if !chunk.is_empty() {
            decoded.push(Decoded::Log {
                step: self.step.clone(),
                chunk: Bytes::from(chunk),
            });
        }
    }

    fn release(&mut self, decoded: &mut Vec<Decoded>) {
        if std::mem::take(&mut self.held_newline) {
            decoded.push(Decoded::Log {
                step: self.step.clone(),
                chunk: Bytes::from_static(b"\n"),
            });
        }
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

    fn decode_all(bytes: &[u8]) -> Vec<Decoded> {
        let mut decoder = LineDecoder::new();
        let mut out = Vec::new();
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            out.extend(decoder.line(line));
        }
        out.extend(decoder.finish());
        out
    }

    fn logs_of(decoded: &[Decoded], step: &str) -> Vec<u8> {
        decoded
            .iter()
            .filter_map(|d| match d {
                Decoded::Log {
                    step: Some(s),
                    chunk,
                } if s == step => Some(chunk.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn frames(decoded: &[Decoded]) -> Vec<Frame> {
        decoded
            .iter()
            .filter_map(|d| match d {
                Decoded::Frame(frame) => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn output_comes_back_byte_for_byte_around_frames() {
        for output in [
            &b"no newline at the end"[..],
            b"ends with one\n",
            b"two\n\n",
            b"\n",
            b"a\nb\nc",
        ] {
            let mut encoder = LineEncoder::new();
            let mut stream = Vec::new();
            encoder.log("s1", output, &mut stream);
            encoder.frame(
                &Frame::Finished {
                    status: StepStatus::Passed,
                },
                &mut stream,
            );
            encoder.log("s2", b"next", &mut stream);
            let decoded = decode_all(&stream);
            assert_eq!(logs_of(&decoded, "s1"), output, "{output:?}");
            assert_eq!(logs_of(&decoded, "s2"), b"next");
            assert_eq!(
                frames(&decoded),
                vec![
                    Frame::Log { step: "s1".into() },
                    Frame::Finished {
                        status: StepStatus::Passed
                    },
                    Frame::Log { step: "s2".into() },
                ]
            );
        }
    }

    #[test]
    fn events_round_trip_through_frames() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_123);
        let events = vec![
            WorkerEvent::Step {
                step: "s1".into(),
                status: StepStatus::Failed,
                at,
                detail: StepDetail {
                    exit_code: Some(3),
                    attempt: 2,
                    message: Some("exit code 3".into()),
                },
            },
            WorkerEvent::Output {
                step: "s1".into(),
                key: "k".into(),
                value: "v\u{7}\n".into(),
            },
            WorkerEvent::Initialized {
                status: StepStatus::Passed,
                at,
                message: None,
            },
            WorkerEvent::Finished {
                status: StepStatus::Failed,
            },
        ];
        let mut encoder = LineEncoder::new();
        let mut stream = Vec::new();
        for event in &events {
            encoder.event(event, &mut stream);
        }
        let back: Vec<WorkerEvent> = frames(&decode_all(&stream))
            .into_iter()
            .filter_map(Frame::into_event)
            .collect();
        assert_eq!(back, events);
    }

    #[test]
    fn long_frames_travel_in_pieces_shorter_than_the_kubelet_splits() {
        let cases: Vec<TestCaseRecord> = (0..2000)
            .map(|index| TestCaseRecord {
                worker: "root".into(),
                suite: "suite".into(),
                class: Some("tests.Class".into()),
                name: format!("test_{index}"),
                file: None,
                status: crate::store::TestCaseStatus::Passed,
                duration_secs: Some(0.5),
                message: None,
            })
            .collect();
        let frame = Frame::TestCases {
            step: "s1".into(),
            report: "junit.xml".into(),
            cases,
        };
        let mut encoder = LineEncoder::new();
        let mut stream = Vec::new();
        encoder.log("s1", b"partial", &mut stream);
        encoder.frame(&frame, &mut stream);
        encoder.log("s1", b"after\n", &mut stream);
        assert!(
            stream
                .split(|b| *b == b'\n')
                .all(|line| line.len() < 16 * 1024)
        );
        let decoded = decode_all(&stream);
        assert_eq!(logs_of(&decoded, "s1"), b"partialafter\n");
        assert!(frames(&decoded).contains(&frame));
    }

    #[test]
    fn a_corrupted_frame_is_kept_as_output_and_reported() {
        let decoded = decode_all(b"\x1b]4242;tk1;{\"type\":\x07\nafter\n");
        assert!(matches!(decoded[1], Decoded::Invalid { .. }), "{decoded:?}");
        let other = decode_all(b"\x1b]4242;tk2;{}\x07\n");
        assert!(
            matches!(&other[0], Decoded::Invalid { error, .. } if error.to_string().contains("version")),
            "{other:?}"
        );
    }

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
        let reply = Reply::Parallel(ParallelOutcome {
            status: StepStatus::Passed,
            workers: vec![(
                WorkerId {
                    path: "root/p/0".into(),
                    number: 1,
                },
                StepStatus::Passed,
            )],
            message: None,
        });
        assert_eq!(Reply::from_json(reply.to_json().as_bytes()).unwrap(), reply);
    }
}
