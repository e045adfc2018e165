//! Artifacts through the API: listed, downloaded one by one, archived.

use std::io::Read;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn artifacts_are_listed_downloaded_and_archived() {
    let server = TestServer::open().await;
    server
        .create_yaml("apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {name: files}\nspec:\n  steps:\n  - name: Make\n    id: make\n    shell: 'mkdir -p out/sub && echo hello > out/a.txt && echo deep > out/sub/b.txt'\n    artifacts: {workingDir: out, paths: ['**/*.txt']}\n")
        .await;
    let execution = server.run("files", json!({})).await;
    let id = execution["id"].as_str().unwrap().to_owned();
    let done = server.finished(&id).await;
    assert_eq!(done["result"]["status"], "passed", "{done}");

    let list = server
        .get_json(&format!("/v1/test-workflow-executions/{id}/artifacts"))
        .await;
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["a.txt", "sub/b.txt"], "{list}");
    assert_eq!(list[0]["executionName"], "files-1");
    assert_eq!(list[0]["status"], "ready");

    let file = server
        .call(
            Method::GET,
            &format!("/v1/test-workflow-executions/{id}/artifacts/sub/b.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.text().await.unwrap(), "deep\n");
    let missing = server
        .call(
            Method::GET,
            &format!("/v1/test-workflow-executions/{id}/artifacts/nope.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let archive = server
        .call(
            Method::GET,
            &format!("/v1/test-workflow-executions/{id}/artifact-archive"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(archive.headers()["content-type"], "application/gzip");
    let bytes = archive.bytes().await.unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut found = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        found.push((entry.path().unwrap().display().to_string(), text));
    }
    found.sort();
    assert_eq!(
        found,
        [
            ("a.txt".to_owned(), "hello\n".to_owned()),
            ("sub/b.txt".to_owned(), "deep\n".to_owned())
        ]
    );
}
