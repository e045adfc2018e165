//! `content.git`, `content.tarball` and `artifacts` through the engine and
//! the local executor, on real processes: a real `git` against repositories
//! made here (over `file://` and over HTTP with credentials), tarballs from
//! files and from an HTTP server started by the test, artifacts read back
//! from where the events say they are, and JUnit reports turned into test
//! cases.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use testkube_core::engine::{Engine, Event, ExecutionRequest, ExecutionSummary};
use testkube_core::status::{ExecutionStatus, StepStatus};
use testkube_core::store::TestCaseStatus;
use testkube_executors::LocalExecutor;

mod common;
#[path = "content_artifacts/s3.rs"]
mod s3;
use common::{executors, plan, plan_with, step, workflow};

/// Runs `yaml` to its end: the summary and every event.
async fn run(executor: &LocalExecutor, id: &str, yaml: &str) -> (ExecutionSummary, Vec<Event>) {
    run_plan(executor, id, plan(yaml)).await
}

async fn run_plan(
    executor: &LocalExecutor,
    id: &str,
    plan: testkube_core::Plan,
) -> (ExecutionSummary, Vec<Event>) {
    let engine = Engine::new(Arc::new(executor.clone()));
    let mut running = engine.start(plan, ExecutionRequest::new(id)).unwrap();
    let mut events = Vec::new();
    let mut summary = None;
    while let Some(event) = running.next_event().await {
        if let Event::Finished(done) = &event {
            summary = Some((**done).clone());
        }
        events.push(event);
    }
    (summary.expect("a Finished event"), events)
}

/// The log of step `id`.
fn log(events: &[Event], id: &str) -> String {
    let mut text = Vec::new();
    for event in events {
        if let Event::Log { step, chunk, .. } = event
            && step == id
        {
            text.extend_from_slice(chunk);
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn notices(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Notice { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The artifacts of step `id`: (path, location, size).
fn artifacts(events: &[Event], id: &str) -> Vec<(String, String, u64)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Artifact {
                step,
                path,
                location,
                size,
                ..
            } if step == id => Some((path.clone(), location.clone(), *size)),
            _ => None,
        })
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git is installed");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A bare repository with two commits: the first (tagged `v1`, annotated)
/// has `a/x` = 1, `b/y` = 2; the second has `a/x` = 3. Returns the bare
/// repository and the first commit's id.
fn repository(dir: &Path) -> (PathBuf, String) {
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("a")).unwrap();
    std::fs::create_dir_all(work.join("b")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a/x"), "1\n").unwrap();
    std::fs::write(work.join("b/y"), "2\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    std::fs::write(work.join("a/x"), "3\n").unwrap();
    git(&work, &["commit", "-q", "-a", "-m", "two"]);
    let bare = dir.join("repo.git");
    git(
        dir,
        &["clone", "-q", "--bare", "work", bare.to_str().unwrap()],
    );
    (bare, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_checks_out_tags_commits_branches_and_sparse_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, first) = repository(dir.path());
    let uri = format!("file://{}", bare.display());
    for executor in executors(dir.path()) {
        let yaml = workflow(&format!(
            "  steps:\n  \
             - id: tag\n    content: {{git: {{uri: '{uri}', revision: v1, mountPath: /data/tagged}}}}\n    \
               shell: 'test \"$(cat tagged/a/x)\" = 1 && test -f tagged/b/y'\n  \
             - id: commit\n    content: {{git: {{uri: '{uri}', revision: '{first}', mountPath: /data/commit, paths: [a]}}}}\n    \
               shell: 'test \"$(cat commit/a/x)\" = 1 && test ! -e commit/b/y'\n  \
             - id: default\n    content: {{git: {{uri: '{uri}'}}}}\n    \
               shell: 'test \"$(cat repo/a/x)\" = 3'\n  \
             - id: short\n    content: {{git: {{uri: '{uri}', revision: '{}', mountPath: /data/short}}}}\n    \
               shell: 'test \"$(cat short/a/x)\" = 1'\n",
            &first[..10]
        ));
        let (summary, events) = run(&executor, "git", &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        for id in ["tag", "commit", "default", "short"] {
            assert_eq!(step(&summary, id).status, StepStatus::Passed, "{id}");
        }
        let tag_log = log(&events, "tag");
        assert!(tag_log.contains("revision `v1`"), "{tag_log}");
        assert!(
            tag_log.contains(&format!("checked out {uri} at {first}")),
            "{tag_log}"
        );
        assert!(log(&events, "short").contains("fetching the whole history"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_revision_that_does_not_exist_fails_the_step_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, _) = repository(dir.path());
    let uri = format!("file://{}", bare.display());
    for executor in executors(dir.path()) {
        let yaml = workflow(&format!(
            "  steps:\n  - id: bad\n    content: {{git: {{uri: '{uri}', revision: no-such-branch}}}}\n    shell: 'true'\n"
        ));
        let (summary, _) = run(&executor, "badrev", &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Failed);
        let message = step(&summary, "bad").message.clone().unwrap_or_default();
        assert!(message.contains(&uri), "{message}");
        assert!(message.contains("no-such-branch"), "{message}");
        assert!(message.contains("couldn't find remote ref"), "{message}");
    }
}

/// A static HTTP server over `root` (git's "dumb" protocol is just files)
/// that answers `401` unless the request carries `authorization`.
/// Serves until the test process ends; returns its base URL.
fn http_server(root: PathBuf, authorization: Option<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve(stream, &root, authorization.as_deref());
        }
    });
    format!("http://{address}")
}

fn serve(stream: TcpStream, root: &Path, authorization: Option<&str>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut authorized = authorization.is_none();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let (Some(expected), Some((name, value))) = (authorization, line.split_once(':'))
            && name.eq_ignore_ascii_case("authorization")
            && value.trim() == expected
        {
            authorized = true;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split('?')
        .next()
        .unwrap_or(path)
        .trim_start_matches('/');
    let mut stream = stream;
    if !authorized {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    match std::fs::read(root.join(path)) {
        Ok(body) if !path.contains("..") => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        _ => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_credentials_are_used_but_never_shown() {
    let token = "tk-git-T0ken-8d1f2a";
    let dir = tempfile::tempdir().unwrap();
    let (bare, _) = repository(dir.path());
    git(&bare, &["update-server-info"]);
    let basic = http_server(
        dir.path().to_path_buf(),
        Some(format!(
            "Basic {}",
            base64(format!("me:{token}").as_bytes())
        )),
    );
    let bearer = http_server(dir.path().to_path_buf(), Some(format!("Bearer {token}")));
    for executor in executors(dir.path()) {
        let yaml = workflow(&format!(
            "  steps:\n  \
             - id: basic\n    content: {{git: {{uri: '{basic}/repo.git', revision: v1, username: me, token: '{token}', mountPath: /data/basic}}}}\n    \
               shell: 'test \"$(cat basic/a/x)\" = 1'\n  \
             - id: header\n    content: {{git: {{uri: '{bearer}/repo.git', revision: main, token: '{token}', authType: header, mountPath: /data/header}}}}\n    \
               shell: 'test \"$(cat header/a/x)\" = 3'\n  \
             - id: in_uri\n    content: {{git: {{uri: 'http://me:{token}@{}/repo.git', revision: main, mountPath: /data/uri}}}}\n    \
               shell: 'test \"$(cat uri/a/x)\" = 3'\n  \
             - id: wrong\n    condition: always\n    content: {{git: {{uri: '{basic}/repo.git', username: me, token: '{token}-wrong', mountPath: /data/wrong}}}}\n    \
               shell: 'true'\n",
            basic.trim_start_matches("http://")
        ));
        let (summary, events) = run(&executor, "creds", &yaml).await;
        assert_eq!(
            step(&summary, "basic").status,
            StepStatus::Passed,
            "{summary:#?}"
        );
        assert_eq!(
            step(&summary, "header").status,
            StepStatus::Passed,
            "{summary:#?}"
        );
        assert_eq!(
            step(&summary, "in_uri").status,
            StepStatus::Passed,
            "{summary:#?}"
        );
        let wrong = step(&summary, "wrong");
        assert_eq!(wrong.status, StepStatus::Failed);
        let message = wrong.message.clone().unwrap_or_default();
        assert!(message.contains(&format!("{basic}/repo.git")), "{message}");
        assert!(message.contains("the default branch"), "{message}");
        assert!(log(&events, "basic").contains("checked out"));
        for event in &events {
            let text = format!("{event:?}");
            assert!(!text.contains(token), "the token leaked: {text}");
        }
        assert!(
            !serde_json::to_string(&summary).unwrap().contains(token),
            "the token leaked into the summary"
        );
        // The credentials of the URI are not kept in the checkout.
        let config = executor
            .workspace("creds", "root")
            .join("data/uri/.git/config");
        let config = std::fs::read_to_string(&config).unwrap();
        assert!(!config.contains(token), "{config}");
        // No credential helper file is left in the workspace.
        let tmp = executor.workspace("creds", "root").join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// A tar archive holding `entries` (name, contents), gzipped when `gzip`.
fn tarball(entries: &[(&str, &str)], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, contents.as_bytes())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar).unwrap();
    encoder.finish().unwrap()
}

/// A tar archive whose one entry is named `name` as written (the `tar`
/// crate refuses to write unsafe names).
fn raw_tarball(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    let body: &[u8] = if kind == tar::EntryType::Regular {
        b"owned\n"
    } else {
        b""
    };
    header.set_entry_type(kind);
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, body).unwrap();
    builder.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarballs_are_unpacked_from_files_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let entries = [("hello.txt", "hello\n"), ("dir/nested.txt", "nested\n")];
    std::fs::write(files.join("a.tar.gz"), tarball(&entries, true)).unwrap();
    // gzip is recognised by its bytes, not the name.
    std::fs::write(files.join("plain.tgz"), tarball(&entries, false)).unwrap();
    let server = http_server(files.clone(), None);
    for executor in executors(dir.path()) {
        // Local archives come in through config values: the format itself
        // only takes http(s) URLs.
        let yaml = workflow(&format!(
            "  config:\n    archive: {{type: string}}\n    url: {{type: string}}\n  \
             steps:\n  - id: unpack\n    content:\n      tarball:\n      \
             - {{url: '{{{{ config.archive }}}}', path: /data/local}}\n      \
             - {{url: '{{{{ config.url }}}}', path: /data/plain}}\n      \
             - {{url: '{server}/a.tar.gz', path: /data/http, mount: true}}\n    \
             shell: 'test \"$(cat local/hello.txt)\" = hello && test \"$(cat plain/dir/nested.txt)\" = nested && test \"$(cat http/dir/nested.txt)\" = nested'\n",
        ));
        let archive = files.join("a.tar.gz").display().to_string();
        let url = format!("file://{}", files.join("plain.tgz").display());
        let plan = plan_with(&yaml, &[("archive", &archive), ("url", &url)]);
        let (summary, events) = run_plan(&executor, "tar", plan).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert!(log(&events, "unpack").contains("unpacked 2 entries"));
        let tmp = executor.workspace("tar", "root").join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "the download is removed: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_missing_and_broken_tarballs_fail_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("escape.tar"),
        raw_tarball("../escaped.txt", tar::EntryType::Regular, None),
    )
    .unwrap();
    std::fs::write(
        files.join("link.tar"),
        raw_tarball("evil", tar::EntryType::Symlink, Some("/etc")),
    )
    .unwrap();
    std::fs::write(files.join("text.tar.gz"), "<html>not an archive</html>\n").unwrap();
    let server = http_server(files.clone(), None);
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let cases = [
        ("escape", format!("{server}/escape.tar"), "refused"),
        ("link", format!("{server}/link.tar"), "refused"),
        ("text", format!("{server}/text.tar.gz"), "not a tar archive"),
        ("missing", format!("{server}/missing.tar.gz"), "404"),
        (
            "unreachable",
            format!("http://{closed}/x.tar.gz"),
            "cannot download",
        ),
    ];
    for executor in executors(dir.path()) {
        let mut steps = String::from("  steps:\n");
        for (id, url, _) in &cases {
            steps.push_str(&format!(
                "  - {{id: {id}, condition: always, content: {{tarball: [{{url: '{url}', path: /data/{id}}}]}}, shell: 'true'}}\n"
            ));
        }
        let missing = files.join("nope.tgz").display().to_string();
        steps.insert_str(0, "  config:\n    missing: {type: string}\n");
        steps.push_str(
            "  - {id: nofile, condition: always, content: {tarball: [{url: '{{ config.missing }}', path: /data/nofile}]}, shell: 'true'}\n",
        );
        let plan = plan_with(&workflow(&steps), &[("missing", &missing)]);
        let (summary, _) = run_plan(&executor, "badtar", plan).await;
        let nofile = step(&summary, "nofile").message.clone().unwrap_or_default();
        assert!(
            nofile.contains("cannot read") && nofile.contains(&missing),
            "{nofile}"
        );
        assert_eq!(summary.status, ExecutionStatus::Failed);
        for (id, url, expected) in &cases {
            let result = step(&summary, id);
            assert_eq!(result.status, StepStatus::Failed, "{id}: {result:#?}");
            let message = result.message.clone().unwrap_or_default();
            assert!(message.contains(expected), "{id}: {message}");
            assert!(message.contains(url.as_str()), "{id}: {message}");
        }
        let data = executor.workspace("badtar", "root").join("data");
        assert!(
            !data.join("escaped.txt").exists(),
            "written outside the target"
        );
    }
}

fn read_artifact(location: &str) -> String {
    std::fs::read_to_string(location).unwrap_or_else(|err| panic!("{location}: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_collected_with_globs_working_dir_and_compress() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let yaml = workflow(
            "  steps:\n  \
             - id: make\n    shell: 'mkdir -p out/sub && echo a > out/a.txt && echo bb > out/sub/b.txt && echo c > out/c.log && echo o > other.txt'\n  \
             - id: texts\n    artifacts: {workingDir: /data/out, paths: ['**/*.txt']}\n  \
             - id: top\n    artifacts: {paths: ['*.txt', 'out/*.txt']}\n  \
             - id: folder\n    artifacts: {paths: ['/data/out/sub']}\n  \
             - id: packed\n    artifacts: {paths: ['out/**'], compress: {name: out.tar.gz}}\n  \
             - id: none\n    artifacts: {paths: ['missing/*.txt']}\n",
        );
        let (summary, events) = run(&executor, "art", &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");

        let texts = artifacts(&events, "texts");
        let names: Vec<&str> = texts.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(names, ["a.txt", "sub/b.txt"]);
        for (path, location, size) in &texts {
            assert!(Path::new(location).is_absolute(), "{location}");
            let contents = read_artifact(location);
            assert_eq!(contents.len() as u64, *size, "{path}");
        }
        assert_eq!(read_artifact(&texts[1].1), "bb\n");
        let root = executor.artifacts_dir("art");
        assert_eq!(Path::new(&texts[0].1), root.join("root/a.txt"));

        let top: Vec<String> = artifacts(&events, "top").into_iter().map(|a| a.0).collect();
        assert_eq!(top, ["other.txt", "out/a.txt"]);
        let folder: Vec<String> = artifacts(&events, "folder")
            .into_iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(folder, ["out/sub/b.txt"]);

        let packed = artifacts(&events, "packed");
        assert_eq!(packed.len(), 1, "{packed:?}");
        assert_eq!(packed[0].0, "out.tar.gz");
        let bytes = std::fs::read(&packed[0].1).unwrap();
        assert_eq!(bytes.len() as u64, packed[0].2);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut inside = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut contents = String::new();
            entry.read_to_string(&mut contents).unwrap();
            inside.push((name, contents));
        }
        inside.sort();
        assert_eq!(
            inside,
            [
                ("out/a.txt".to_owned(), "a\n".to_owned()),
                ("out/c.log".to_owned(), "c\n".to_owned()),
                ("out/sub/b.txt".to_owned(), "bb\n".to_owned()),
            ]
        );

        assert!(artifacts(&events, "none").is_empty());
        assert_eq!(step(&summary, "none").status, StepStatus::Passed);
        assert!(
            notices(&events)
                .iter()
                .any(|n| n.contains("no artifacts matched `missing/*.txt`")),
            "{:?}",
            notices(&events)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_collected_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let yaml = workflow(
            "  steps:\n  \
             - id: tests\n    shell: 'mkdir -p r && echo failing > r/log.txt && exit 1'\n    artifacts: {paths: ['r/*']}\n  \
             - id: skipped\n    condition: passed\n    artifacts: {paths: ['r/*']}\n  \
             - id: defaulted\n    artifacts: {paths: ['r/*']}\n  \
             - id: later\n    condition: always\n    artifacts: {paths: ['r/*']}\n",
        );
        let (summary, events) = run(&executor, "fail", &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Failed);
        let tests = step(&summary, "tests");
        assert_eq!(tests.status, StepStatus::Failed);
        assert_eq!(tests.exit_code, Some(1));
        let collected = artifacts(&events, "tests");
        assert_eq!(collected.len(), 1, "{collected:?}");
        assert_eq!(read_artifact(&collected[0].1), "failing\n");
        assert_eq!(step(&summary, "skipped").status, StepStatus::Skipped);
        assert!(artifacts(&events, "skipped").is_empty());
        // A step that only collects artifacts runs `always` by default.
        assert_eq!(step(&summary, "defaulted").status, StepStatus::Passed);
        assert_eq!(artifacts(&events, "defaulted").len(), 1);
        assert_eq!(step(&summary, "later").status, StepStatus::Passed);
        assert_eq!(artifacts(&events, "later").len(), 1);
    }
}

const JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="calc" tests="3">
    <testcase classname="Calc" name="adds" time="0.5"/>
    <testcase classname="Calc" name="divides" time="1.5"><failure message="expected 2 but was 3">trace</failure></testcase>
    <testcase classname="Calc" name="later"><skipped/></testcase>
  </testsuite>
</testsuites>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_artifacts_become_test_cases() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        let yaml = workflow(&format!(
            "  steps:\n  - id: test\n    content:\n      files:\n      \
             - {{path: /data/reports/junit.xml, content: {junit:?}}}\n      \
             - {{path: /data/reports/config.xml, content: '<config><value>1</value></config>'}}\n      \
             - {{path: /data/reports/broken.xml, content: \"<testsuite name='x'><testcase name='cut'>\"}}\n    \
             shell: 'true'\n    artifacts: {{paths: ['reports/**/*.xml']}}\n",
            junit = JUNIT
        ));
        let (summary, events) = run(&executor, "junit", &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        assert_eq!(artifacts(&events, "test").len(), 3);
        let reports: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                Event::TestCases {
                    step,
                    report,
                    cases,
                    worker,
                } => Some((
                    step.clone(),
                    report.clone(),
                    cases.clone(),
                    worker.path.clone(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(reports.len(), 1, "only the JUnit report: {reports:?}");
        let (step_id, report, cases, worker) = &reports[0];
        assert_eq!(step_id, "test");
        assert_eq!(report, "reports/junit.xml");
        let statuses: Vec<(&str, TestCaseStatus)> =
            cases.iter().map(|c| (c.name.as_str(), c.status)).collect();
        assert_eq!(
            statuses,
            [
                ("adds", TestCaseStatus::Passed),
                ("divides", TestCaseStatus::Failed),
                ("later", TestCaseStatus::Skipped),
            ]
        );
        assert_eq!(cases[1].message.as_deref(), Some("expected 2 but was 3"));
        assert!(cases.iter().all(|c| c.worker == *worker), "{cases:?}");
        assert_eq!(
            (
                summary.tests.tests,
                summary.tests.passed,
                summary.tests.failed,
                summary.tests.skipped
            ),
            (3, 1, 1, 1)
        );
        assert!(
            notices(&events)
                .iter()
                .any(|n| n.contains("reports/broken.xml") && n.contains("cannot be read")),
            "{:?}",
            notices(&events)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_artifacts_are_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    for executor in executors(dir.path()) {
        // Larger than one upload part: stored in several.
        let yaml = workflow(
            "  steps:\n  - id: big\n    shell: 'head -c 12582917 /dev/urandom > big.bin'\n    artifacts: {paths: [big.bin]}\n",
        );
        let (summary, events) = run(&executor, "big", &yaml).await;
        assert_eq!(summary.status, ExecutionStatus::Passed, "{summary:#?}");
        let stored = artifacts(&events, "big");
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(stored[0].2, 12_582_917);
        let original =
            std::fs::read(executor.workspace("big", "root").join("data/big.bin")).unwrap();
        let copy = std::fs::read(&stored[0].1).unwrap();
        assert!(original == copy, "the stored copy differs");
    }
}
