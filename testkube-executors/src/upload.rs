//! Uploading a file to a presigned URL, and downloading one: how artifacts and the
//! archives of `parallel.transfer`/`fetch` move between a pod and the object store without
//! credentials in the pod.
//!
//! The engine signs one PUT URL per artifacts step when it creates the Job (see
//! `testkube_results::artifacts::ArtifactStore::presign_put`); the runner in the pod packs
//! the step's files into one archive and sends it with [`upload_file`]. The pod holds no
//! cloud credentials and needs no route to the engine, only to the object store.
//!
//! - **Streaming, with the length up front.** The file is sent in 64 KiB chunks, never read
//!   whole, with its `Content-Length`: S3 refuses chunked uploads to a presigned PUT, and a
//!   retry must send the same bytes again. An archive is therefore written to a file first
//!   (the pod's `/tmp`), then uploaded. One PUT takes at most [`MAX_UPLOAD_BYTES`] (S3's
//!   limit for a single PUT).
//! - **Retries.** 5xx answers, `408`, `429` and failed connections are retried with
//!   exponential backoff ([`UploadPolicy`]); other answers (a `403` from an expired URL, a
//!   `400`) are final and reported with the server's words.
//! - **Downloads** ([`download_file`]) stream into a file with the same retries; a `404`
//!   is [`UploadError::Missing`] (an archive that was never written).
//! - **No secrets in errors.** A presigned URL is a bearer credential until it expires:
//!   errors name it without its query string.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, HeaderValue};
use thiserror::Error;
use tokio_util::io::ReaderStream;

/// The largest file one presigned PUT can take (S3's single-PUT limit, 5 GiB).
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// How much of a refusal's body is kept for the error.
const MAX_ERROR_BODY: usize = 1024;

/// The size of the chunks a file is streamed in.
const CHUNK_BYTES: usize = 64 * 1024;

/// How uploads are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPolicy {
    /// How many times a request is sent at most (1 = no retry).
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each further one.
    pub first_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for UploadPolicy {
    /// 5 attempts, waiting 0.5 s, 1 s, 2 s, 4 s between them.
    fn default() -> Self {
        UploadPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl UploadPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Why a file was not uploaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The file cannot be read.
    #[error("cannot read {} to upload it: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than one PUT can take.
    #[error(
        "cannot upload {}: it holds {size} bytes, more than the {MAX_UPLOAD_BYTES} one \
         presigned PUT can take; collect fewer files per artifacts step",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The URL is not an `http(s)://` URL.
    #[error("cannot upload to `{url}`: {reason}")]
    BadUrl {
        /// The URL, without its query.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the upload; retrying would not help.
    #[error("the upload to {url} was refused with {status}: {body}{hint}")]
    Refused {
        /// The URL, without its query.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the server's answer.
        body: String,
        /// What to do about it, when known (starts with `; `).
        hint: &'static str,
    },
    /// Every attempt failed with a server error or a broken connection.
    #[error(
        "the upload to {url} failed {attempts} time(s), last: {last}; the object store may be down or unreachable from here"
    )]
    GaveUp {
        /// The URL, without its query.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt got.
        last: String,
    },
    /// The object a download URL names does not exist.
    #[error("there is nothing at {url}")]
    Missing {
        /// The URL, without its query.
        url: String,
    },
    /// The downloaded file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    /// Worth another try: what went wrong.
    Retry(String),
    Fail(UploadError),
}

/// Sends the file `path` to the presigned PUT `url` with `client`, streaming it, retrying as
/// `policy` says; returns the bytes sent.
///
/// # Errors
/// See [`UploadError`].
pub async fn upload_file(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    policy: &UploadPolicy,
) -> Result<u64, UploadError> {
    let shown = without_query(url);
    let parsed = http_url(url, &shown)?;
    let read = |source| UploadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = tokio::fs::metadata(path).await.map_err(read)?.len();
    if size > MAX_UPLOAD_BYTES {
        return Err(UploadError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    with_retries(policy, &shown, |_| async {
        let file = match tokio::fs::File::open(path).await {
            Ok(file) => file,
            Err(source) => return Attempt::Fail(read(source)),
        };
        let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, CHUNK_BYTES));
        let sent = client
            .put(parsed.clone())
            .header(CONTENT_LENGTH, HeaderValue::from(size))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Attempt::Retry(describe(&err)),
        };
        if response.status().is_success() {
            return Attempt::Done(size);
        }
        unsuccessful(response, &shown).await
    })
    .await
}

/// What a response that is not a success comes to: another try for server errors, timeouts
/// and throttling, else a refusal with the server's words.
async fn unsuccessful<T>(response: reqwest::Response, shown: &str) -> Attempt<T> {
    let status = response.status();
    let body = response_text(response).await;
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        return Attempt::Retry(format!("{status}: {body}"));
    }
    Attempt::Fail(UploadError::Refused {
        url: shown.to_owned(),
        status,
        body,
        hint: hint(status),
    })
}

/// Downloads the presigned GET `url` into the file `path` (replaced), streaming, retrying as
/// `policy` says; returns the bytes received.
///
/// # Errors
/// See [`UploadError`]; [`UploadError::Missing`] when there is no such object.
pub async fn download_file(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    policy: &UploadPolicy,
) -> Result<u64, UploadError> {
    let shown = without_query(url);
    let parsed = http_url(url, &shown)?;
    with_retries(policy, &shown, |_| async {
        let response = match client.get(parsed.clone()).send().await {
            Ok(response) => response,
            Err(err) => return Attempt::Retry(describe(&err)),
        };
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Attempt::Fail(UploadError::Missing { url: shown.clone() });
        }
        if !status.is_success() {
            return unsuccessful(response, &shown).await;
        }
        let write = |source| UploadError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut file = match tokio::fs::File::create(path).await {
            Ok(file) => file,
            Err(source) => return Attempt::Fail(write(source)),
        };
        let mut response = response;
        let mut size = 0u64;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // A broken transfer starts over.
                Err(err) => return Attempt::Retry(describe(&err)),
            };
            if let Err(source) = tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await {
                return Attempt::Fail(write(source));
            }
            size += chunk.len() as u64;
        }
        if let Err(source) = tokio::io::AsyncWriteExt::flush(&mut file).await {
            return Attempt::Fail(write(source));
        }
        Attempt::Done(size)
    })
    .await
}

/// `url` parsed, when it is an `http(s)://` URL.
fn http_url(url: &str, shown: &str) -> Result<reqwest::Url, UploadError> {
    let parsed = reqwest::Url::parse(url).map_err(|err| UploadError::BadUrl {
        url: shown.to_owned(),
        reason: err.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UploadError::BadUrl {
            url: shown.to_owned(),
            reason: "only http:// and https:// URLs can be used".to_owned(),
        });
    }
    Ok(parsed)
}

/// Runs `attempt` until it is done or fails for good, waiting `policy`'s backoff between
/// tries; gives up after `policy.attempts`.
async fn with_retries<T, F, Fut>(
    policy: &UploadPolicy,
    url: &str,
    mut attempt: F,
) -> Result<T, UploadError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let attempts = policy.attempts.max(1);
    let mut number = 1;
    loop {
        match attempt(number).await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(err) => return Err(err),
            Attempt::Retry(last) if number >= attempts => {
                return Err(UploadError::GaveUp {
                    url: url.to_owned(),
                    attempts,
                    last,
                });
            }
            Attempt::Retry(_) => {
                tokio::time::sleep(policy.backoff(number)).await;
                number += 1;
            }
        }
    }
}

/// What to do about a refusal.
fn hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::FORBIDDEN => {
            "; the URL may have expired or been signed for another object (URLs are signed \
             when the worker starts: a step that outlives the URL's lifetime cannot upload)"
        }
        StatusCode::NOT_FOUND => "; the bucket may not exist",
        StatusCode::PAYLOAD_TOO_LARGE => "; collect fewer files per artifacts step",
        _ => "",
    }
}

/// The start of a response's body, for an error.
async fn response_text(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]);
    let text = text.trim();
    if text.is_empty() {
        "(no details)".to_owned()
    } else {
        text.to_owned()
    }
}

/// A request error in words, with its causes (reqwest's own message is terse).
fn describe(err: &reqwest::Error) -> String {
    // reqwest's own message holds the URL, signature included: say it without.
    let mut text = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_body() {
        "sending the file failed"
    } else {
        "the request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `url` without its query (the signature) and fragment.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let policy = UploadPolicy {
            attempts: 10,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        let waits: Vec<u128> = (1..=4).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_backoff_then_give_up() {
        let policy = UploadPolicy {
            attempts: 3,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        };
        let start = tokio::time::Instant::now();
        let mut seen = Vec::new();
        let result: Result<(), _> = with_retries(&policy, "http://s3/x", |n| {
            seen.push(n);
            async move { Attempt::Retry(format!("503 number {n}")) }
        })
        .await;
        assert_eq!(seen, [1, 2, 3]);
        // 1 s after the first attempt, 2 s after the second, none after the last.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let message = result.unwrap_err().to_string();
        assert!(message.contains("failed 3 time(s)"), "{message}");
        assert!(message.contains("503 number 3"), "{message}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_answer_stops_the_retries() {
        let policy = UploadPolicy::default();
        let mut count = 0;
        let result = with_retries(&policy, "http://s3/x", |n| {
            count += 1;
            async move {
                if n < 2 {
                    Attempt::Retry("connection reset".to_owned())
                } else {
                    Attempt::Done(7u64)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(count, 2);
    }

    #[test]
    fn signatures_stay_out_of_messages() {
        assert_eq!(
            without_query("http://h:1/b/k.tar.gz?X-Amz-Signature=abc"),
            "http://h:1/b/k.tar.gz"
        );
    }
}
