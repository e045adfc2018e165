//! `testkube run` with `TESTKUBE_ARTIFACTS_URL=s3://...` keeps artifacts in S3-compatible
//! storage (moto; see testkube-results' `tests/support/s3.rs`), and `testkube artifacts ID
//! --download DIR` gets the same bytes back from there.

use std::path::Path;
use std::process::Output;

use super::{command, home, stdout, workflow};

#[path = "../../../../testkube-results/tests/support/s3.rs"]
mod server;

/// `testkube ARGS` with the S3 server's `AWS_*` settings and `url` as the artifacts URL.
fn with_s3(home: &Path, server: &server::S3Server, url: &str, args: &[&str]) -> Output {
    command(home, args)
        .envs(server.env())
        .env("TESTKUBE_ARTIFACTS_URL", url)
        .output()
        .unwrap()
}

fn all_output(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_local_run_keeps_artifacts_in_s3_and_downloads_them_back() {
    let Some(server) = server::server("a_local_run_keeps_artifacts_in_s3") else {
        return;
    };
    let bucket = server.bucket();
    let url = format!("s3://{bucket}/ci/runs");
    let (dir, home) = home();
    let file = workflow(
        &home,
        "s3files",
        "  - name: Make\n    shell: 'mkdir -p out/sub && echo hello > out/a.txt && head -c 3000000 /dev/urandom > out/sub/big.bin'\n    artifacts: {workingDir: out, paths: ['**/*']}\n",
    );
    let out = with_s3(&home, server, &url, &["run", &file]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");

    // The listing needs no S3 access: it reads the records.
    let listed = command(&home, &["artifacts", "s3files-1", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0), "{}", all_output(&listed));
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mut locations: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let location = a["location"].as_str().unwrap();
            let rest = location
                .strip_prefix(&format!("s3://{bucket}/ci/runs/"))
                .unwrap_or_else(|| panic!("{location}"));
            (a["path"].as_str().unwrap().to_owned(), rest.to_owned())
        })
        .collect();
    locations.sort_unstable();
    let id = locations[0].1.split('/').next().unwrap().to_owned();
    assert!(id.starts_with("s3files-"), "{id}");
    assert_eq!(
        locations,
        [
            ("a.txt".to_owned(), format!("{id}/root/a.txt")),
            ("sub/big.bin".to_owned(), format!("{id}/root/sub/big.bin")),
        ]
    );
    assert!(
        text.contains(&format!(
            "artifacts: 2 files in s3://{bucket}/ci/runs/{id}/"
        )),
        "{text}"
    );
    assert!(
        !home.join("runs").join(&id).join("artifacts").exists(),
        "nothing is kept locally"
    );

    let target = dir.path().join("downloaded");
    let out = with_s3(
        &home,
        server,
        "",
        &[
            "artifacts",
            "s3files-1",
            "--download",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(
        std::fs::read_to_string(target.join("root/a.txt")).unwrap(),
        "hello\n"
    );
    let original = std::fs::read(
        home.join("runs")
            .join(&id)
            .join("workers/root/data/out/sub/big.bin"),
    )
    .unwrap();
    assert_eq!(original.len(), 3_000_000);
    assert_eq!(
        std::fs::read(target.join("root/sub/big.bin")).unwrap(),
        original
    );
}

#[test]
fn an_unusable_artifacts_url_stops_the_run_before_it_starts() {
    let (_dir, home) = home();
    let file = workflow(&home, "bad", "  - shell: 'true'\n");
    let out = command(&home, &["run", &file])
        .env("TESTKUBE_ARTIFACTS_URL", "gs://bucket/x")
        .output()
        .unwrap();
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("TESTKUBE_ARTIFACTS_URL=`gs://bucket/x`"),
        "{text}"
    );
    assert!(text.contains("s3://BUCKET"), "{text}");
    assert!(!home.join("runs").exists(), "{text}");
}
