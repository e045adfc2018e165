//! A real S3-compatible server for integration tests: moto (`moto_server`, PyPI `moto[server]`).
//!
//! `.ci/run` starts one and exports `TESTKUBE_TEST_S3_ENDPOINT`; without that variable the
//! first test that asks starts `moto_server` on a free loopback port itself (when it is on
//! `PATH`) and shares it with the other tests of the binary; else [`server`] returns `None`
//! and prints why, and the test returns early (a laptop without moto still passes).
//!
//! The server lives as long as the test process: it is started by a shell that kills it when
//! its stdin (a pipe this process holds) closes, which happens however the process ends.
//! Each test gets a bucket of its own ([`S3Server::bucket`]). moto accepts any credentials
//! and does not check signatures, so tests assert what reaches the store, not auth.
//!
//! Shared by the crates' test binaries with `#[path]`; it only needs std.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The variable naming a running server (`http://127.0.0.1:PORT`).
pub(crate) const ENDPOINT_VARIABLE: &str = "TESTKUBE_TEST_S3_ENDPOINT";

/// How long a started `moto_server` may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running S3-compatible server.
pub(crate) struct S3Server {
    endpoint: String,
    /// The shell guarding a server this process started (kept for its stdin pipe).
    _guard: Option<Child>,
}

static SERVER: OnceLock<Result<S3Server, String>> = OnceLock::new();

/// The shared server, or `None` (after printing why) when none can be had here.
pub(crate) fn server(test: &str) -> Option<&'static S3Server> {
    match SERVER.get_or_init(start) {
        Ok(server) => Some(server),
        Err(why) => {
            // Straight to stderr, past the test harness's capture: a skip must show.
            let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
            None
        }
    }
}

fn start() -> Result<S3Server, String> {
    if let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE)
        && !endpoint.trim().is_empty()
    {
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        let address = authority(&endpoint)?;
        if !answers(&address) {
            // Set but dead: a broken CI setup, never a reason to skip.
            panic!("{ENDPOINT_VARIABLE}={endpoint} does not answer S3 requests");
        }
        return Ok(S3Server {
            endpoint,
            _guard: None,
        });
    }
    let Some(moto) = find_program("moto_server") else {
        return Err(format!(
            "no S3-compatible server: {ENDPOINT_VARIABLE} is unset and moto_server is not on \
             PATH (pip install 'moto[server]')"
        ));
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| format!("cannot find a free port: {err}"))?
        .port();
    let script = format!(
        "'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; read _; kill $pid",
        moto.display()
    );
    let guard = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start moto_server: {err}"))?;
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    while !answers(&address) {
        if Instant::now() > deadline {
            panic!("moto_server on {address} did not answer within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(S3Server {
        endpoint: format!("http://{address}"),
        _guard: Some(guard),
    })
}

impl S3Server {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates a bucket of its own for one test; returns its name.
    pub(crate) fn bucket(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tk-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let address = authority(&self.endpoint).unwrap_or_else(|err| panic!("{err}"));
        let status = request(&address, "PUT", &format!("/{name}"))
            .unwrap_or_else(|err| panic!("cannot create bucket {name}: {err}"));
        assert_eq!(status, 200, "creating bucket {name}");
        name
    }

    /// The `AWS_*` variables a child process needs to reach this server.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ]
    }
}

/// `host:port` of an `http://host:port` endpoint.
fn authority(endpoint: &str) -> Result<String, String> {
    endpoint
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
        .filter(|authority| authority.contains(':'))
        .ok_or_else(|| {
            format!("{ENDPOINT_VARIABLE}={endpoint} is not of the form http://HOST:PORT")
        })
}

/// Whether an S3 server answers a bucket listing at `address`.
fn answers(address: &str) -> bool {
    request(address, "GET", "/").is_ok_and(|status| status == 200)
}

/// Sends one bodiless HTTP/1.1 request; returns the status code.
fn request(address: &str, method: &str, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(address).map_err(|err| err.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|err| err.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|err| err.to_string())?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP answer from {address}"))
}

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
