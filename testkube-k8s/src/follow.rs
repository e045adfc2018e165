//! Following one container's log to its end, line by line, as it is
//! written: never buffered until the container ends, and resumed where it
//! broke off.
//!
//! Lines are read with `timestamps=true`. When the stream breaks (a
//! dropped connection, a 5xx), it is opened again with `sinceTime` at the
//! last line's timestamp; since `sinceTime` is read at whole seconds, lines
//! older than the last one seen are dropped, and of the lines carrying the
//! very timestamp of the last one, as many as were seen. No line is lost or
//! doubled. A stream that ends while the container still runs is opened
//! again the same way.

use std::sync::Arc;
use std::time::Duration;

use futures_util::AsyncBufReadExt;
use k8s_openapi::api::core::v1::{ContainerState, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::LogParams;
use tokio::sync::{mpsc, watch};

use crate::pods::PodView;

/// How long the pod watch may lag behind the end of a log stream before the
/// stream is opened again.
const SETTLE: Duration = Duration::from_secs(3);

/// Retry delays after a failed request, longest last (then repeated).
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Why a log could not be followed to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FollowError {
    /// The pod is gone and its log with it.
    #[error("the pod was deleted before its log could be read to the end")]
    Gone,
    /// The log cannot be read (a lost node, an unreachable kubelet).
    #[error("the log of container `{container}` cannot be read: {message}")]
    Unreadable {
        /// The container.
        container: String,
        /// The API server's answer.
        message: String,
    },
}

/// One line of a container's log (with its newline, without the
/// timestamp).
#[derive(Debug)]
pub(crate) struct Line {
    /// The pod.
    pub(crate) pod: Arc<str>,
    /// The container.
    pub(crate) container: Arc<str>,
    /// The text.
    pub(crate) text: Vec<u8>,
    /// Not a line: the lines before it were in the log when the worker was
    /// taken up after a restart ([`Catch::Current`]); those after it are new.
    pub(crate) caught_up: bool,
}

impl Line {
    /// The mark sent after the lines a re-attached worker had written.
    pub(crate) fn caught_up(pod: &str, container: &str) -> Self {
        Line {
            pod: Arc::from(pod),
            container: Arc::from(container),
            text: Vec::new(),
            caught_up: true,
        }
    }
}

/// How a container's log is read when a worker is taken up after a
/// restart: lines it wrote before are told apart from new ones, so that
/// its requests are asked again only when nobody answered them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Catch {
    /// Followed as it is written (every container of a new worker).
    Live,
    /// The container was running when the worker was taken up: what its
    /// log holds is read first, then [`Line::caught_up`], then the rest.
    Current,
}

/// Where reading a log stopped.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    last: Option<Timestamp>,
    seen_at_last: usize,
}

impl Cursor {
    /// Whether the line stamped `at`, read from a stream opened at this
    /// cursor, was delivered before (`skipped_at_last` counts the lines of
    /// the cursor's own timestamp skipped so far in that stream).
    fn seen(&self, at: Timestamp, skipped_at_last: &mut usize) -> bool {
        match self.last {
            Some(last) if at < last => true,
            Some(last) if at == last && *skipped_at_last < self.seen_at_last => {
                *skipped_at_last += 1;
                true
            }
            _ => false,
        }
    }

    fn advance(&mut self, at: Timestamp) {
        if self.last == Some(at) {
            self.seen_at_last += 1;
        } else {
            self.last = Some(at);
            self.seen_at_last = 1;
        }
    }
}

/// Reads container `container` of pod `pod` to its end, sending each line
/// to `lines` (waiting when the reader is behind: memory stays bounded).
pub(crate) async fn follow_container(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    view: &mut watch::Receiver<PodView>,
    lines: &mpsc::Sender<Line>,
    catch: Catch,
) -> Result<(), FollowError> {
    let pod_name: Arc<str> = Arc::from(pod);
    let container_name: Arc<str> = Arc::from(container);
    let mut cursor = Cursor::default();
    let mut failures = 0usize;
    // Reading what is there without following first ends at the log's end
    // as it is now.
    let mut catching_up = catch == Catch::Current;
    loop {
        let params = LogParams {
            container: Some(container.to_owned()),
            follow: !catching_up,
            timestamps: true,
            // Whole seconds, rounded down here: kube rounds to the nearest
            // second, which could skip the lines after the last one read.
            since_time: cursor
                .last
                .and_then(|at| Timestamp::from_second(at.as_second()).ok()),
            ..LogParams::default()
        };
        match api.log_stream(pod, &params).await {
            Ok(stream) => {
                failures = 0;
                // Lines are skipped by where this stream began, not by the
                // cursor as it moves: lines may share a timestamp.
                let opened_at = cursor;
                let mut skipped_at_last = 0;
                futures_util::pin_mut!(stream);
                let mut buffer = Vec::new();
                loop {
                    buffer.clear();
                    match stream.read_until(b'\n', &mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let (at, text) = split_timestamp(&buffer);
                            if let Some(at) = at {
                                if opened_at.seen(at, &mut skipped_at_last) {
                                    continue;
                                }
                                cursor.advance(at);
                            }
                            let line = Line {
                                pod: Arc::clone(&pod_name),
                                container: Arc::clone(&container_name),
                                text: text.to_vec(),
                                caught_up: false,
                            };
                            if lines.send(line).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            Err(err) => {
                if view.borrow().gone {
                    return Err(FollowError::Gone);
                }
                // A lost node's kubelet never answers again.
                let lost = view.borrow().pod.as_ref().is_some_and(|pod| {
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Unknown")
                });
                if lost {
                    return Err(FollowError::Unreadable {
                        container: container.to_owned(),
                        message: format!("the pod's node is lost ({err})"),
                    });
                }
                if let kube::Error::Api(status) = &err
                    && status.code < 500
                    && status.code != 429
                {
                    return Err(FollowError::Unreadable {
                        container: container.to_owned(),
                        message: status.message.clone(),
                    });
                }
                let delay = BACKOFF[failures.min(BACKOFF.len() - 1)];
                failures += 1;
                if failures > 30 {
                    return Err(FollowError::Unreadable {
                        container: container.to_owned(),
                        message: err.to_string(),
                    });
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        }
        if catching_up {
            catching_up = false;
            if lines.send(Line::caught_up(pod, container)).await.is_err() {
                return Ok(());
            }
            continue;
        }
        // The stream ended: done when the container did, else opened again.
        if ended(view, container).await {
            return Ok(());
        }
    }
}

/// Waits (a little) for the pod watch to show the container ended.
async fn ended(view: &mut watch::Receiver<PodView>, container: &str) -> bool {
    let check = |view: &PodView| {
        view.gone
            || view
                .pod
                .as_ref()
                .and_then(|pod| container_state(pod, container))
                .is_some_and(|state| state.terminated.is_some())
    };
    if check(&view.borrow()) {
        return true;
    }
    tokio::time::timeout(SETTLE, view.wait_for(check))
        .await
        .is_ok_and(|found| found.is_ok())
}

/// The state of container `name` (an init container or not).
pub(crate) fn container_state<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerState> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|container| container.name == name)?
        .state
        .as_ref()
}

/// `TIMESTAMP SP TEXT` as the kubelet writes lines with `timestamps=true`.
fn split_timestamp(line: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = line.iter().position(|b| *b == b' ') else {
        return (None, line);
    };
    let parsed = std::str::from_utf8(&line[..space])
        .ok()
        .and_then(|text| text.parse::<Timestamp>().ok());
    match parsed {
        Some(at) => (Some(at), &line[space + 1..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_seen_before_a_resume_are_dropped_once() {
        let t1: Timestamp = "2026-12-06T10:00:00.100Z".parse().unwrap();
        let t2: Timestamp = "2026-12-06T10:00:00.200Z".parse().unwrap();
        let mut cursor = Cursor::default();
        cursor.advance(t1);
        cursor.advance(t2);
        cursor.advance(t2);
        // The resumed stream starts at the whole second: t1, t2, t2, t2.
        let mut skipped = 0;
        assert!(cursor.seen(t1, &mut skipped));
        assert!(cursor.seen(t2, &mut skipped));
        assert!(cursor.seen(t2, &mut skipped));
        assert!(!cursor.seen(t2, &mut skipped), "a third line at t2 is new");
    }

    #[test]
    fn lines_sharing_a_timestamp_in_one_stream_are_all_delivered() {
        let t1: Timestamp = "2026-12-06T10:00:00.100Z".parse().unwrap();
        let opened_at = Cursor::default();
        let mut cursor = opened_at;
        let mut skipped = 0;
        for _ in 0..3 {
            assert!(!opened_at.seen(t1, &mut skipped));
            cursor.advance(t1);
        }
        assert_eq!(cursor.seen_at_last, 3);
    }

    #[test]
    fn timestamps_are_split_off() {
        let (at, text) = split_timestamp(b"2026-12-06T10:00:00.123456789Z hello world\n");
        assert!(at.is_some());
        assert_eq!(text, b"hello world\n");
        let (at, text) = split_timestamp(b"no timestamp here\n");
        assert!(at.is_none());
        assert_eq!(text, b"no timestamp here\n");
    }
}
