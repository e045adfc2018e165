//! Checks of logs: order, batches, pages of large logs.

use super::*;

/// Chunks read back in append order, whole or by step and worker.
pub async fn logs_appended_in_order(store: &dyn ResultStore) {
    create(store, "logs-1", "logs").await;
    let writes = [
        ("root", "s1", "one\n"),
        ("root/w/1", "s2", "two\n"),
        ("root", "s1", "three\n"),
        ("root", "s3", "four\n"),
        ("root/w/1", "s2", "five\n"),
    ];
    for (worker, step, text) in writes {
        store
            .append_log("logs-1", worker, step, text.as_bytes())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let text = |filter: LogFilter| async move {
        let chunks = store.logs("logs-1", &filter).await.unwrap_or_default();
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect::<String>()
    };
    assert_eq!(
        text(LogFilter::default()).await,
        "one\ntwo\nthree\nfour\nfive\n"
    );
    let s1 = LogFilter {
        step: Some("s1".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(text(s1).await, "one\nthree\n");
    let worker = LogFilter {
        worker: Some("root/w/1".to_owned()),
        ..LogFilter::default()
    };
    assert_eq!(text(worker).await, "two\nfive\n");
    let binary = [0_u8, 159, 146, 150, 255];
    store
        .append_log("logs-1", "root", "bin", &binary)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let bin = LogFilter {
        step: Some("bin".to_owned()),
        ..LogFilter::default()
    };
    let chunks = store.logs("logs-1", &bin).await.unwrap_or_default();
    assert_eq!(chunks.first().map(|c| c.data.as_slice()), Some(&binary[..]));
}

pub(super) fn chunk(worker: &str, step: &str, text: &str) -> LogChunk {
    LogChunk {
        worker: worker.to_owned(),
        step: step.to_owned(),
        data: text.as_bytes().to_vec(),
    }
}

fn log_text(chunks: &[LogChunk]) -> String {
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect()
}

/// A batch lands whole and in slice order, between single appends, with its workers and steps.
pub async fn logs_appended_in_batches(store: &dyn ResultStore) {
    create(store, "batch-1", "batch").await;
    store
        .append_log("batch-1", "root", "s1", b"first\n")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let batch = [
        chunk("root", "s1", "a\n"),
        chunk("root/w/0", "s2", "b\n"),
        chunk("root", "s1", "c\n"),
        chunk("root/w/1", "s2", "d\n"),
    ];
    store
        .append_logs("batch-1", &batch)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    store
        .append_logs("batch-1", &[])
        .await
        .unwrap_or_else(|err| panic!("an empty batch is fine: {err}"));
    store
        .append_log("batch-1", "root", "s1", b"last\n")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let all = store
        .logs("batch-1", &LogFilter::default())
        .await
        .unwrap_or_default();
    assert_eq!(log_text(&all), "first\na\nb\nc\nd\nlast\n");
    assert_eq!(all.get(2), Some(&batch[1]), "worker and step are kept");
    let s1 = LogFilter {
        step: Some("s1".to_owned()),
        worker: Some("root".to_owned()),
        ..LogFilter::default()
    };
    let read = store.logs("batch-1", &s1).await.unwrap_or_default();
    assert_eq!(log_text(&read), "first\na\nc\nlast\n");
    let rest = LogFilter { skip: 3, ..s1 };
    let read = store.logs("batch-1", &rest).await.unwrap_or_default();
    assert_eq!(log_text(&read), "last\n", "skip counts matching chunks");
    let none = LogFilter {
        skip: 100,
        ..LogFilter::default()
    };
    assert!(
        store
            .logs("batch-1", &none)
            .await
            .unwrap_or_default()
            .is_empty()
    );
    let large: Vec<LogChunk> = (0..2000)
        .map(|n| chunk("root", "big", &format!("{n}\n")))
        .collect();
    store
        .append_logs("batch-1", &large)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let big_filter = LogFilter {
        step: Some("big".to_owned()),
        ..LogFilter::default()
    };
    let big = store.logs("batch-1", &big_filter).await.unwrap_or_default();
    assert_eq!(log_text(&big), log_text(&large));
    let page = LogFilter {
        skip: 10,
        limit: Some(3),
        ..big_filter
    };
    let page = store.logs("batch-1", &page).await.unwrap_or_default();
    assert_eq!(log_text(&page), "10\n11\n12\n", "a page: skip, then limit");
}

/// A log of several MiB written in batches of chunks of every size (some longer than
/// [`MAX_LOG_CHUNK`]) reads back page by page byte for byte, in order, each chunk at most
/// [`MAX_LOG_CHUNK`] bytes: what lets a reader stream a log of any size in bounded memory.
pub async fn large_logs_read_back_in_pages(store: &dyn ResultStore) {
    create(store, "large-1", "large").await;
    // Bytes that differ from chunk to chunk and are not text, so a reordered, lost or repeated
    // piece shows.
    let bytes = |seed: usize, len: usize| -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 31 + seed * 7 + i / 251) % 256).unwrap_or(0))
            .collect()
    };
    let sizes = [
        1,
        17,
        4096,
        MAX_LOG_CHUNK - 1,
        MAX_LOG_CHUNK,
        MAX_LOG_CHUNK + 1,
        300_000,
    ];
    let mut written: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut everything = Vec::new();
    for round in 0..6 {
        let batch: Vec<LogChunk> = sizes
            .iter()
            .enumerate()
            .map(|(n, &len)| {
                let step = if n % 3 == 0 { "noisy" } else { "main" };
                LogChunk {
                    worker: "root".to_owned(),
                    step: step.to_owned(),
                    data: bytes(round * 10 + n, len),
                }
            })
            .collect();
        for chunk in &batch {
            written
                .entry(if chunk.step == "noisy" {
                    "noisy"
                } else {
                    "main"
                })
                .or_default()
                .extend_from_slice(&chunk.data);
            everything.extend_from_slice(&chunk.data);
        }
        store
            .append_logs("large-1", &batch)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let big = bytes(99, 3 * MAX_LOG_CHUNK + 5);
    store
        .append_log("large-1", "root", "main", &big)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    written.entry("main").or_default().extend_from_slice(&big);
    everything.extend_from_slice(&big);
    assert!(everything.len() > 3_000_000, "a log of several MiB");

    let read_in_pages = |step: Option<&str>, page: u64| {
        let step = step.map(str::to_owned);
        async move {
            let mut read = Vec::new();
            let mut skip = 0;
            loop {
                let filter = LogFilter {
                    step: step.clone(),
                    skip,
                    limit: Some(page),
                    ..LogFilter::default()
                };
                let chunks = store
                    .logs("large-1", &filter)
                    .await
                    .unwrap_or_else(|err| panic!("{err}"));
                assert!(
                    chunks.len() as u64 <= page,
                    "a page holds at most `limit` chunks"
                );
                for chunk in &chunks {
                    assert!(
                        !chunk.data.is_empty() && chunk.data.len() <= MAX_LOG_CHUNK,
                        "a stored chunk holds 1 to MAX_LOG_CHUNK bytes, not {}",
                        chunk.data.len()
                    );
                    read.extend_from_slice(&chunk.data);
                }
                skip += chunks.len() as u64;
                if (chunks.len() as u64) < page {
                    return read;
                }
            }
        }
    };
    assert!(
        read_in_pages(None, 7).await == everything,
        "the whole log, read 7 chunks at a time, is what was written"
    );
    for step in ["main", "noisy"] {
        assert!(
            read_in_pages(Some(step), 3).await == written[step],
            "step {step}'s log, read 3 chunks at a time, is what it wrote"
        );
    }
}
