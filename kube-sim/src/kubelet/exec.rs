//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`):
//! the command runs in a new bubblewrap process with the running
//! container's view (same volumes, image binds and environment). It does
//! not join the container's PID namespace, so it does not see the
//! container's processes. Channel bytes: 0 stdin, 1 stdout, 2 stderr,
//! 3 the exit Status, 255 close (v5; `[255, 0]` closes stdin). No TTY.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::lock;
use crate::api::{Info, Query, Shared};
use crate::error::ApiError;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v1/namespaces/{ns}/pods/{name}/exec", any(exec))
}

async fn exec(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let info = Info {
        verb: if method == axum::http::Method::POST { "create" } else { "get" }.into(),
        uri: uri.to_string(),
        path: uri.path().into(),
        resource: Some((String::new(), "v1".into(), "pods".into())),
        namespace: Some(ns.clone()),
        name: Some(name.clone()),
        subresource: Some("exec".into()),
        user_agent: headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").into(),
    };
    let received = chrono::Utc::now();
    let response = match shared.faults.take(&info) {
        Some(code) => ApiError::injected(code).into_response(),
        None => start(&shared, &ns, &name, &uri, ws).unwrap_or_else(IntoResponse::into_response),
    };
    if let Some(audit) = &shared.audit {
        audit.record(&info, response.status().as_u16(), None, received);
    }
    response
}

fn start(
    shared: &Shared,
    ns: &str,
    name: &str,
    uri: &Uri,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query = Query(
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    let registry = shared.store.registry();
    let t = registry.find("", "v1", "pods").ok_or_else(|| ApiError::internal("pods are not registered"))?;
    let pod = shared.store.get(&t, ns, name)?;
    // Like the API server: any container of the pod, init containers too
    // (a running init container takes exec); the first container by default.
    let names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .chain(pod["spec"]["initContainers"].as_array())
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let container = match query.get("container") {
        Some(c) => c.to_string(),
        None => names.first().cloned().unwrap_or_default(),
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!("container {container} is not valid for pod {name}")));
    }
    let command = query.all("command");
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let kubelet = shared.kubelet.clone();
    let view = lock(&kubelet.views).get(&(ns.to_string(), name.to_string(), container.clone())).cloned();
    let Some(view) = view else {
        return Err(ApiError::bad_request(format!("unable to upgrade connection: container not found (\"{container}\")")));
    };
    let ws = ws.map_err(|_| ApiError::bad_request("Upgrade request required"))?;
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let Some(protocol) = ws.selected_protocol().and_then(|p| p.to_str().ok()).map(str::to_string) else {
        return Err(ApiError::bad_request("exec needs the WebSocket subprotocol v5.channel.k8s.io or v4.channel.k8s.io"));
    };
    let want_stdin = query.flag("stdin");
    Ok(ws.on_upgrade(move |socket| session(socket, view, command, want_stdin, protocol == "v5.channel.k8s.io")))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(Bytes::from(v))
}

fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn session(socket: WebSocket, view: super::sandbox::View, command: Vec<String>, want_stdin: bool, v5: bool) {
    let (mut sink, mut stream) = socket.split();
    let mut cmd = tokio::process::Command::new(&view.argv[0]);
    cmd.args(&view.argv[1..]).arg("--").args(&command);
    cmd.stdin(if want_stdin { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    cmd.process_group(0).kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = json!({"metadata": {}, "status": "Failure", "message": format!("starting bwrap: {e}"), "reason": "InternalError"});
            let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
            let _ = sink.close().await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
    for (channel, pipe) in [(1u8, child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)), (2u8, child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>))] {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 || tx.send((channel, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut stdin = child.stdin.take();
    let mut outputs_open = true;
    loop {
        tokio::select! {
            out = rx.recv(), if outputs_open => match out {
                Some((channel, data)) => {
                    if sink.send(frame(channel, &data)).await.is_err() {
                        return;
                    }
                }
                None => outputs_open = false,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                    0 => {
                        if let Some(s) = stdin.as_mut()
                            && s.write_all(&data[1..]).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    255 if v5 && data.get(1) == Some(&0) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            status = child.wait(), if !outputs_open => {
                let code = status.map_or(1, |s| s.code().unwrap_or(1));
                let _ = sink.send(frame(3, exit_status(&command, code).to_string().as_bytes())).await;
                // A normal closure (1000): clients read anything else as an error.
                let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
                return;
            }
        }
    }
}
