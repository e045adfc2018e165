//! Container logs: each container's stdout and stderr, interleaved, one
//! file per container with a timestamp per line (`<RFC3339 with 9
//! digits> <line>`), and `pods/log` served from it: `container`, `follow`
//! (until the container ends), `sinceTime`, `sinceSeconds`, `timestamps`
//! (RFC3339Nano as the kubelet writes it), `tailLines`, `limitBytes`.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, watch};

use crate::api::Query;
use crate::error::ApiError;

/// One container's log file and its progress.
pub(crate) struct ContainerLog {
    pub(crate) path: PathBuf,
    file: Mutex<Option<tokio::fs::File>>,
    /// Bytes written so far and whether the container ended.
    progress: watch::Sender<(u64, bool)>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// RFC3339Nano as Go prints it: trailing zeros of the fraction dropped.
fn nano(stamp: &str) -> String {
    let Some((head, frac)) = stamp.trim_end_matches('Z').split_once('.') else { return stamp.into() };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{head}Z") } else { format!("{head}.{frac}Z") }
}

impl ContainerLog {
    pub(crate) async fn create(path: PathBuf) -> std::io::Result<Arc<Self>> {
        let file = tokio::fs::File::create(&path).await?;
        let (progress, _) = watch::channel((0, false));
        Ok(Arc::new(Self { path, file: Mutex::new(Some(file)), progress }))
    }

    async fn append(&self, line: &[u8]) {
        let mut text = stamp(Utc::now()).into_bytes();
        text.push(b' ');
        text.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            text.push(b'\n');
        }
        let mut guard = self.file.lock().await;
        if let Some(f) = guard.as_mut()
            && f.write_all(&text).await.is_ok()
        {
            self.progress.send_modify(|(n, _)| *n += text.len() as u64);
        }
    }

    /// Copies a stream into the log, line by line.
    pub(crate) async fn pump(self: Arc<Self>, stream: impl AsyncRead + Unpin) {
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => self.append(&line).await,
            }
        }
    }

    /// Marks the container ended: followers stop at the end of the file.
    pub(crate) async fn finish(&self) {
        let mut guard = self.file.lock().await;
        if let Some(f) = guard.as_mut() {
            let _ = f.flush().await;
        }
        *guard = None;
        self.progress.send_modify(|(_, done)| *done = true);
    }
}

/// Filters and options of one `pods/log` request.
struct Options {
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    tail: Option<usize>,
    limit: Option<usize>,
    follow: bool,
}

impl Options {
    fn parse(query: &Query) -> Result<Self, ApiError> {
        let since = match (query.get("sinceTime"), query.get("sinceSeconds")) {
            (Some(_), Some(_)) => return Err(ApiError::bad_request("at most one of sinceTime or sinceSeconds may be specified")),
            (Some(t), None) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|e| ApiError::bad_request(format!("sinceTime {t:?} is not RFC 3339: {e}")))?
                    .with_timezone(&Utc),
            ),
            (None, Some(s)) => {
                let secs: i64 = s.parse().map_err(|_| ApiError::bad_request(format!("sinceSeconds {s:?} is not a number")))?;
                Some(Utc::now() - chrono::Duration::seconds(secs))
            }
            (None, None) => None,
        };
        let number = |key: &str| -> Result<Option<usize>, ApiError> {
            query.get(key).map(|v| v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{key} {v:?} is not a number")))).transpose()
        };
        Ok(Self {
            since,
            timestamps: query.flag("timestamps"),
            tail: number("tailLines")?,
            limit: number("limitBytes")?,
            follow: query.flag("follow"),
        })
    }

    /// One stored line as served, or None when filtered out.
    fn render(&self, line: &str) -> Option<String> {
        let (ts, content) = line.split_once(' ').unwrap_or((line, ""));
        if let Some(since) = self.since
            && let Ok(t) = DateTime::parse_from_rfc3339(ts)
            && t.with_timezone(&Utc) < since
        {
            return None;
        }
        Some(if self.timestamps { format!("{} {content}\n", nano(ts)) } else { format!("{content}\n") })
    }
}

/// Serves a container's log (whole, or followed until it ends).
pub(crate) async fn serve(log: Arc<ContainerLog>, query: &Query) -> Result<Response, ApiError> {
    let opts = Options::parse(query)?;
    let text = tokio::fs::read(&log.path).await.map_err(|e| ApiError::internal(format!("reading {}: {e}", log.path.display())))?;
    let mut offset = text.len() as u64;
    let mut lines: Vec<String> = String::from_utf8_lossy(&text).lines().filter_map(|l| opts.render(l)).collect();
    if let Some(tail) = opts.tail {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let mut first: Vec<u8> = lines.concat().into_bytes();
    let mut budget = opts.limit;
    if let Some(limit) = budget {
        first.truncate(limit);
        budget = Some(limit - first.len());
    }
    if !opts.follow || budget == Some(0) {
        return Ok((StatusCode::OK, [("content-type", "text/plain")], first).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut progress = log.progress.subscribe();
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        loop {
            let (written, done) = *progress.borrow_and_update();
            if written > offset {
                let Ok(all) = tokio::fs::read(&log.path).await else { return };
                let end = all.len().min(written as usize);
                // Whole lines only.
                let chunk = &all[offset as usize..end];
                let cut = chunk.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let mut out: Vec<u8> = String::from_utf8_lossy(&chunk[..cut])
                    .lines()
                    .filter_map(|l| opts.render(l))
                    .collect::<String>()
                    .into_bytes();
                offset += cut as u64;
                if let Some(left) = budget {
                    out.truncate(left);
                    budget = Some(left - out.len());
                }
                if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                    return;
                }
                if budget == Some(0) {
                    return;
                }
                continue;
            }
            if done {
                return;
            }
            tokio::select! {
                r = progress.changed() => if r.is_err() { return },
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Ok((StatusCode::OK, [("content-type", "text/plain")], Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_nano_drops_trailing_zeros() {
        assert_eq!(nano("2026-01-02T03:04:05.120000000Z"), "2026-01-02T03:04:05.12Z");
        assert_eq!(nano("2026-01-02T03:04:05.000000000Z"), "2026-01-02T03:04:05Z");
    }
}
