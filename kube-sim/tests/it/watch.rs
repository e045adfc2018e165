//! Watches: kube-runtime's watcher across an expired watch (410 → relist),
//! bookmarks, and 410 for a compacted resourceVersion.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};

use crate::common::start;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {"w": "1"}}})).unwrap()
}

#[tokio::test]
async fn watcher_relists_after_an_expired_watch() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default().labels("w=1")).boxed();
    let mut next = async || -> Event<ConfigMap> {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("watch event in time") {
                Some(Ok(ev)) => return ev,
                // The expired watch surfaces as an error; the watcher goes on with a relist.
                Some(Err(e)) => assert!(e.to_string().contains("Expired"), "unexpected watcher error: {e}"),
                None => panic!("watcher ended"),
            }
        }
    };
    assert!(matches!(next().await, Event::Init));
    assert!(matches!(next().await, Event::InitDone));
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    match next().await {
        Event::Apply(c) => assert_eq!(c.metadata.name.as_deref(), Some("a")),
        other => panic!("expected Apply(a), got {other:?}"),
    }
    sim.handle.expire_watches();
    // The watch ends with 410: the watcher lists again.
    assert!(matches!(next().await, Event::Init));
    match next().await {
        Event::InitApply(c) => assert_eq!(c.metadata.name.as_deref(), Some("a")),
        other => panic!("expected InitApply(a), got {other:?}"),
    }
    assert!(matches!(next().await, Event::InitDone));
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    match next().await {
        Event::Apply(c) => assert_eq!(c.metadata.name.as_deref(), Some("b")),
        other => panic!("expected Apply(b), got {other:?}"),
    }
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_gone() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.client.clone(), "default");
    let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut events = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    api.create(&PostParams::default(), &cm("y")).await.unwrap();
    let mut saw_added = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("event").expect("open").unwrap() {
            WatchEvent::Added(c) => {
                assert_eq!(c.metadata.name.as_deref(), Some("y"));
                saw_added = true;
            }
            WatchEvent::Bookmark(_) if !saw_added => {}
            WatchEvent::Bookmark(b) => {
                let mark: u64 = b.metadata.resource_version.parse().unwrap();
                assert!(mark > rv.parse::<u64>().unwrap());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    sim.handle.expire_watches();
    // The open watch ends with an ERROR 410 event.
    let mut ended = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        if let Ok(WatchEvent::Error(e)) = ev {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            ended = true;
        }
    }
    assert!(ended);
    // Watching from before the compaction is refused the same way.
    let mut old = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match old.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    sim.handle.shutdown().await;
}
