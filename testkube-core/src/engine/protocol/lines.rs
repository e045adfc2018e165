//! The byte stream of a worker's log: its steps' output as written, and
//! frames on lines of their own (see the [module documentation](super)).
//! Long frames go as pieces of at most 8 KiB: the kubelet cuts lines
//! longer than 16 KiB and stamps each part.

use bytes::Bytes;

use super::{Frame, ProtocolError};
use crate::engine::executor::WorkerEvent;

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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::engine::executor::StepDetail;
    use crate::status::StepStatus;
    use crate::store::TestCaseRecord;

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
}
