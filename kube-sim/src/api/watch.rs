//! `?watch=true`: a stream of `{"type", "object"}` lines. Starts from the
//! requested resourceVersion (the history since then) or, without one,
//! with the current objects as `ADDED`; `allowWatchBookmarks` adds
//! `BOOKMARK` events every bookmark interval; a compacted resourceVersion,
//! an expired watch (fault injection) or a watch that fell behind ends
//! with an `ERROR` event carrying a 410 `Expired` Status, as the real
//! server's etcd watch does, which kube-runtime's watcher answers with a
//! relist. Objects that stop matching a selector are not turned into
//! `DELETED` events (a documented limit).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{Query, Shared, Target};
use crate::error::ApiError;
use crate::select::Selectors;
use crate::store::Change;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

pub(super) fn serve(shared: &Shared, target: &Target, query: &Query, sel: Selectors) -> Result<Response, ApiError> {
    let t = target.t.clone();
    let key = t.key();
    let ns = target.namespace.clone();
    let rv = match query.get("resourceVersion").filter(|r| !r.is_empty()) {
        Some(r) => Some(r.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {r:?}")))?),
        None => None,
    };
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let store = shared.store.clone();
    let interval = shared.bookmark_interval;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut expired = store.expired();
    let start = store.watch(&t, ns.as_deref(), rv, &sel);
    tokio::spawn(async move {
        let (backlog, mut changes) = match start {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(line("ERROR", &e.status())).await;
                return;
            }
        };
        let wanted = |c: &Change| c.key == key && ns.as_ref().is_none_or(|n| n == &c.namespace) && sel.matches(&c.object);
        let mut last = rv.unwrap_or(0);
        for c in backlog {
            if wanted(&c) {
                last = last.max(c.rv);
                if tx.send(line(c.kind.as_str(), &c.object)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                _ = expired.recv() => {
                    let _ = tx.send(line("ERROR", &ApiError::gone(last, store.resource_version()).status())).await;
                    return;
                }
                _ = ticker.tick(), if bookmarks => {
                    // Everything up to `now` is in the channel already (sent under the store's lock).
                    let now = store.resource_version();
                    loop {
                        match changes.try_recv() {
                            Ok(c) => {
                                if wanted(&c) && tx.send(line(c.kind.as_str(), &c.object)).await.is_err() {
                                    return;
                                }
                                last = last.max(c.rv);
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => {
                                let _ = tx.send(line("ERROR", &ApiError::gone(last, now).status())).await;
                                return;
                            }
                        }
                    }
                    last = last.max(now);
                    let mark = json!({"kind": t.kind, "apiVersion": t.api_version(), "metadata": {"resourceVersion": last.to_string()}});
                    if tx.send(line("BOOKMARK", &mark)).await.is_err() {
                        return;
                    }
                }
                change = changes.recv() => match change {
                    Ok(c) => {
                        last = last.max(c.rv);
                        if wanted(&c) && tx.send(line(c.kind.as_str(), &c.object)).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        // Fell behind (or the store is gone): the client must relist.
                        let _ = tx.send(line("ERROR", &ApiError::gone(last, store.resource_version()).status())).await;
                        return;
                    }
                },
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [("content-type", "application/json"), ("cache-control", "no-cache, private")],
        Body::from_stream(stream),
    )
        .into_response())
}
