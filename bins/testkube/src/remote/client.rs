//! The HTTP client of `--server`: requests with the bearer token, answers
//! read as the server's own types ([`testkube_server::api`]), its problem
//! documents turned into errors that say what to do.

use futures_util::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use testkube_server::Problem;
use testkube_server::api::Notification;

use crate::commands::CliError;

/// A server and the token to call it with.
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(server: &str, token: Option<String>) -> Result<Self, CliError> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::usage(format!(
                "--server {server} is not an http:// or https:// URL"
            ))
            .with_hint("e.g. --server http://127.0.0.1:8088 (what `testkube serve` prints)"));
        }
        Ok(Client {
            base,
            token: token.filter(|token| !token.is_empty()),
            http: reqwest::Client::new(),
        })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`; a non-2xx answer is an error saying why.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|err| {
            CliError::input(format!("cannot reach {}: {err}", self.base))
                .with_hint("check --server (or TESTKUBE_SERVER) and that the server runs")
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(response).await)
    }

    /// Sends `request` and reads the JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, CliError> {
        let response = self.send(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|err| CliError::input(format!("cannot read the answer: {err}")))?;
        serde_json::from_slice(&bytes).map_err(|err| {
            CliError::input(format!(
                "the answer of {} is not what this CLI reads: {err}",
                self.base
            ))
            .with_hint("the server may run another version of testkube")
        })
    }

    async fn refusal(&self, response: Response) -> CliError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let problem: Option<Problem> = serde_json::from_str(&text).ok();
        let mut message = problem
            .as_ref()
            .map_or_else(|| format!("{status}: {text}"), |p| p.detail.clone());
        if let Some(problem) = &problem {
            for issue in &problem.issues {
                let place = match (&issue.path, issue.line, issue.column) {
                    (_, Some(line), Some(column)) => format!("{line}:{column}: "),
                    (Some(path), ..) => format!("{path}: "),
                    _ => String::new(),
                };
                message.push_str(&format!("\n  {place}{}", issue.message));
            }
        }
        let error = if status == StatusCode::BAD_REQUEST {
            CliError::usage(message)
        } else {
            CliError::input(message)
        };
        match status {
            StatusCode::UNAUTHORIZED => {
                error.with_hint("give a token with --token or TESTKUBE_TOKEN")
            }
            StatusCode::FORBIDDEN => {
                error.with_hint("the server's tokens file gives each token its scopes")
            }
            _ => error,
        }
    }

    /// Follows an execution's notifications (server-sent events) until the
    /// server ends the stream, handing each to `each`; reconnects where it
    /// left off when the connection drops.
    pub(crate) async fn follow(
        &self,
        id: &str,
        mut each: impl FnMut(&Notification),
    ) -> Result<(), CliError> {
        let mut last = 0u64;
        let mut attempts = 0;
        loop {
            let request = self.request(
                Method::GET,
                &format!("/v1/test-workflow-executions/{id}/notifications?resumeAfterSeqNo={last}"),
            );
            let response = self.send(request).await?;
            let mut stream = response.bytes_stream();
            let mut buffer = Vec::new();
            let mut dropped = false;
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else {
                    dropped = true;
                    break;
                };
                buffer.extend_from_slice(&chunk);
                while let Some(end) = find_blank_line(&buffer) {
                    let block: Vec<u8> = buffer.drain(..end).collect();
                    for line in String::from_utf8_lossy(&block).lines() {
                        let Some(data) = line.strip_prefix("data:") else {
                            continue;
                        };
                        if let Ok(notification) = serde_json::from_str::<Notification>(data.trim())
                        {
                            last = last.max(notification.seq_no);
                            each(&notification);
                        }
                    }
                }
            }
            if !dropped {
                return Ok(());
            }
            attempts += 1;
            if attempts > 5 {
                return Err(CliError::input(format!(
                    "lost the connection to {} while following {id}",
                    self.base
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// The end (after the blank line) of the first complete SSE block.
fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .map(|at| at + 2)
}
