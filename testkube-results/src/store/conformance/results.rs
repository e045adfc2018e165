//! Checks of what a run leaves: artifacts, outputs, test cases, durations, lookup by name.

use super::*;

pub(super) fn artifact(worker: &str, path: &str, size: u64) -> ArtifactRecord {
    ArtifactRecord {
        worker: worker.to_owned(),
        step: "collect".to_owned(),
        path: path.to_owned(),
        location: format!("/kept/{worker}/{path}"),
        size,
    }
}

/// Artifacts read back in recording order; the same file recorded again is replaced in place.
pub async fn artifacts_recorded(store: &dyn ResultStore) {
    create(store, "art-1", "art").await;
    create(store, "art-2", "art").await;
    let first = [
        artifact("root", "reports/junit.xml", 1200),
        artifact("root/w/0", "reports/junit.xml", 800),
        artifact("root", "video.mp4", 5_000_000_000),
    ];
    store
        .record_artifacts("art-1", &first)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    store
        .record_artifacts("art-2", &[artifact("root", "other.txt", 1)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let replaced = ArtifactRecord {
        location: "https://bucket.example/art-1/junit.xml".to_owned(),
        ..artifact("root", "reports/junit.xml", 1300)
    };
    store
        .record_artifacts("art-1", &[replaced.clone(), artifact("root", "log.txt", 0)])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let read = store.artifacts("art-1").await.unwrap_or_default();
    assert_eq!(
        read,
        [
            replaced,
            first[1].clone(),
            first[2].clone(),
            artifact("root", "log.txt", 0)
        ]
    );
    assert_eq!(
        store.artifacts("art-2").await.map(|a| a.len()).ok(),
        Some(1),
        "artifacts are per execution"
    );
    assert!(
        store
            .artifacts("no-such-execution")
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// An execution is found by id, else by name (the newest of that name); ids win over names.
pub async fn found_by_id_or_name(store: &dyn ResultStore) {
    let first = create(store, "find-id-1", "find").await;
    let second = create(store, "find-id-2", "find").await;
    let found = |key: &'static str| async move {
        store
            .find_execution(key)
            .await
            .map(|r| r.id)
            .unwrap_or_else(|err| panic!("{key}: {err}"))
    };
    assert_eq!(found("find-id-1").await, first.id);
    assert_eq!(found("find-2").await, second.id, "by name `WORKFLOW-N`");
    assert_eq!(found("find-1").await, first.id);
    for id in ["named-old", "named-new"] {
        let named = NewExecution {
            name: Some("nightly".to_owned()),
            ..new_execution(id, "find-named")
        };
        store
            .create_execution(named)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    assert_eq!(found("nightly").await, "named-new", "the newest of a name");
    // An execution named like another's id: the id wins.
    let confusing = NewExecution {
        name: Some("find-id-1".to_owned()),
        ..new_execution("find-confusing", "find")
    };
    store
        .create_execution(confusing)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(found("find-id-1").await, first.id);
    let missing = store.find_execution("find-99").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(ref key)) if key == "find-99"),
        "{missing:?}"
    );
}

fn case(name: &str, file: &str, status: TestCaseStatus, duration: f64) -> TestCaseRecord {
    TestCaseRecord {
        worker: "root".to_owned(),
        suite: "suite".to_owned(),
        class: Some("Class".to_owned()),
        name: name.to_owned(),
        file: Some(file.to_owned()),
        status,
        duration_secs: Some(duration),
        message: (status == TestCaseStatus::Failed).then(|| "boom".to_owned()),
    }
}

/// Outputs (a key written again is replaced) and test cases read back as recorded.
pub async fn outputs_and_test_cases(store: &dyn ResultStore) {
    create(store, "out-1", "out").await;
    let output = |key: &str, value: &str| OutputRecord {
        worker: "root".to_owned(),
        step: "s1".to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
    };
    store
        .record_outputs("out-1", &[output("url", "a"), output("n", "1")])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    store
        .record_outputs("out-1", &[output("url", "b")])
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let outputs = store.outputs("out-1").await.unwrap_or_default();
    assert_eq!(outputs, [output("url", "b"), output("n", "1")]);
    let cases = [
        case("adds", "calc.py", TestCaseStatus::Passed, 0.5),
        case("divides", "calc.py", TestCaseStatus::Failed, 1.25),
    ];
    store
        .record_test_cases("out-1", &cases)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(store.test_cases("out-1").await.ok(), Some(cases.to_vec()));
    // A big batch (stores may split it into several statements) keeps its order.
    let many: Vec<TestCaseRecord> = (0..1234)
        .map(|i| case(&format!("t{i}"), "many.py", TestCaseStatus::Passed, 0.1))
        .collect();
    store
        .record_test_cases("out-1", &many)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let stored = store.test_cases("out-1").await.unwrap_or_default();
    assert_eq!(stored.len(), cases.len() + many.len());
    assert_eq!(stored[cases.len()..], many[..]);
}

/// The latest duration of each item of a workflow, from its earlier executions only: a case
/// the newest worker listed several times is the sum of those runs; skipped runs do not count.
pub async fn durations_latest_per_item(store: &dyn ResultStore) {
    create(store, "dur-1", "dur").await;
    let newest = create(store, "dur-2", "dur").await;
    create(store, "dur-other", "dur-other").await;
    let record = |id: &'static str, cases: Vec<TestCaseRecord>| async move {
        store
            .record_test_cases(id, &cases)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    };
    let on = |worker: &str, case: TestCaseRecord| TestCaseRecord {
        worker: worker.to_owned(),
        ..case
    };
    record(
        "dur-1",
        vec![
            case("slow", "a.py", TestCaseStatus::Passed, 10.0),
            case("fast", "b.py", TestCaseStatus::Passed, 1.0),
            case("param", "c.py", TestCaseStatus::Passed, 100.0),
        ],
    )
    .await;
    record(
        "dur-2",
        vec![
            case("slow", "a.py", TestCaseStatus::Failed, 12.5),
            // One name, three runs (a parameterized case): 0.5 + 1.25 + 2.
            case("param", "c.py", TestCaseStatus::Passed, 0.5),
            case("param", "c.py", TestCaseStatus::Failed, 1.25),
            case("param", "c.py", TestCaseStatus::Passed, 2.0),
            // Skipped now: the last real run (1.0 above) still counts.
            case("fast", "b.py", TestCaseStatus::Skipped, 0.0),
        ],
    )
    .await;
    // Two workers of one execution ran the same case (a matrix): the one
    // that recorded it last counts, not both.
    record(
        "dur-2",
        vec![
            on(
                "root/matrix/0",
                case("twice", "d.py", TestCaseStatus::Passed, 3.0),
            ),
            on(
                "root/matrix/1",
                case("twice", "d.py", TestCaseStatus::Passed, 4.0),
            ),
            on(
                "root/matrix/1",
                case("twice", "d.py", TestCaseStatus::Passed, 4.5),
            ),
        ],
    )
    .await;
    record(
        "dur-other",
        vec![case("slow", "a.py", TestCaseStatus::Passed, 99.0)],
    )
    .await;
    let durations = store.item_durations("dur").await.unwrap_or_default();
    let seen: Vec<(Option<&str>, &str, f64)> = durations
        .iter()
        .map(|d| (d.file.as_deref(), d.name.as_str(), d.duration_secs))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("a.py"), "slow", 12.5),
            (Some("b.py"), "fast", 1.0),
            (Some("c.py"), "param", 3.75),
            (Some("d.py"), "twice", 8.5),
        ]
    );
    let from: Vec<&str> = durations.iter().map(|d| d.execution.as_str()).collect();
    let oldest = durations[1].execution.clone();
    assert_ne!(oldest, newest.name);
    assert_eq!(
        from,
        [
            newest.name.as_str(),
            oldest.as_str(),
            newest.name.as_str(),
            newest.name.as_str()
        ]
    );
    assert!(
        store
            .item_durations("never")
            .await
            .unwrap_or_default()
            .is_empty()
    );
}
