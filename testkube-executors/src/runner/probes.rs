//! Readiness probes of services, with Kubernetes' meaning: `exec` (a
//! command in the service's environment passes with exit code 0),
//! `tcpSocket` (a connection opens), `httpGet` (a plain HTTP GET answers
//! 200..=399), tried every `periodSeconds` (default 10) after
//! `initialDelaySeconds`, each try given `timeoutSeconds` (default 1),
//! ready after `successThreshold` (default 1) successes in a row.
//!
//! Before a service is first ready, Kubernetes never gives up on it because
//! of its readiness probe (`failureThreshold` only marks a ready pod
//! unready again), so neither do we: `failureThreshold` failures in a row
//! (default 3) are reported in the step's log as "not ready yet", and the
//! wait ends with the service's `timeout` or when its process exits.
//!
//! The HTTP request is a plain HTTP/1.0 GET over a standard TCP stream:
//! a probe needs the status line only, and `https` probes (which
//! Kubernetes sends without verifying certificates) are refused before the
//! run rather than half-supported.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// The address services listen on locally, and the default probe host.
pub const SERVICE_HOST: &str = "127.0.0.1";

/// A readiness probe, as parsed from the workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What is checked.
    pub action: ProbeAction,
    /// Before the first try.
    pub initial_delay: Duration,
    /// Between tries.
    pub period: Duration,
    /// The limit of one try.
    pub timeout: Duration,
    /// Successes in a row that make the service ready.
    pub success_threshold: u32,
    /// Failures in a row after which "not ready yet" is reported.
    pub failure_threshold: u32,
}

/// What a [`Probe`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// Runs a command in the service's environment.
    Exec {
        /// The command and its arguments.
        command: Vec<String>,
    },
    /// Opens a TCP connection.
    Tcp {
        /// The host (default [`SERVICE_HOST`]).
        host: String,
        /// The port.
        port: u16,
    },
    /// Sends an HTTP GET.
    Http {
        /// The host (default [`SERVICE_HOST`]).
        host: String,
        /// The port.
        port: u16,
        /// The path (default `/`).
        path: String,
        /// Extra request headers.
        headers: Vec<(String, String)>,
    },
}

impl Probe {
    /// Parses a Kubernetes `Probe` (as JSON), its strings rendered with
    /// `render` (ports and paths may be `{{ }}` templates).
    ///
    /// # Errors
    /// A message saying which field is wrong and what to write instead.
    pub fn parse(
        probe: &Value,
        render: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Probe, String> {
        let seconds = |field: &str, default: u64, min: u64| -> Result<Duration, String> {
            match probe.get(field) {
                None | Some(Value::Null) => Ok(Duration::from_secs(default)),
                Some(value) => value
                    .as_u64()
                    .map(|n| Duration::from_secs(n.max(min)))
                    .ok_or_else(|| {
                        format!("readinessProbe.{field} must be a whole number of seconds")
                    }),
            }
        };
        let count = |field: &str, default: u32| -> Result<u32, String> {
            match probe.get(field) {
                None | Some(Value::Null) => Ok(default),
                Some(value) => value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(|n| n.max(1))
                    .ok_or_else(|| {
                        format!("readinessProbe.{field} must be a positive whole number")
                    }),
            }
        };
        let text = |value: Option<&Value>| -> Result<Option<String>, String> {
            match value {
                Some(Value::String(text)) => render(text).map(Some),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                _ => Ok(None),
            }
        };
        let host = |action: &Value| -> Result<String, String> {
            Ok(text(action.get("host"))?
                .filter(|host| !host.is_empty())
                .unwrap_or_else(|| SERVICE_HOST.to_owned()))
        };
        let port = |kind: &str, action: &Value| -> Result<u16, String> {
            let written = text(action.get("port"))?
                .ok_or_else(|| format!("readinessProbe.{kind}.port is required"))?;
            written.trim().parse::<u16>().map_err(|_| {
                format!(
                    "readinessProbe.{kind}.port `{written}` is not a port number (named \
                     container ports mean nothing locally: write the number)"
                )
            })
        };
        let action = if let Some(exec) = probe.get("exec").filter(|v| !v.is_null()) {
            let command = exec
                .get("command")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| text(Some(item)).map(Option::unwrap_or_default))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            if command.is_empty() {
                return Err("readinessProbe.exec.command is empty: give the command to run".into());
            }
            ProbeAction::Exec { command }
        } else if let Some(tcp) = probe.get("tcpSocket").filter(|v| !v.is_null()) {
            ProbeAction::Tcp {
                host: host(tcp)?,
                port: port("tcpSocket", tcp)?,
            }
        } else if let Some(http) = probe.get("httpGet").filter(|v| !v.is_null()) {
            if let Some(scheme) = text(http.get("scheme"))?
                && !scheme.eq_ignore_ascii_case("http")
            {
                return Err(format!(
                    "readinessProbe.httpGet.scheme `{scheme}` is not supported locally: \
                     probe over plain HTTP, or use tcpSocket"
                ));
            }
            let mut path = text(http.get("path"))?.unwrap_or_default();
            if !path.starts_with('/') {
                path.insert(0, '/');
            }
            let mut headers = Vec::new();
            for header in http
                .get("httpHeaders")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = text(header.get("name"))?.unwrap_or_default();
                let value = text(header.get("value"))?.unwrap_or_default();
                if name.is_empty()
                    || name.contains(['\r', '\n', ':'])
                    || value.contains(['\r', '\n'])
                {
                    return Err(format!(
                        "readinessProbe.httpGet.httpHeaders: `{name}` is not a valid header"
                    ));
                }
                headers.push((name, value));
            }
            ProbeAction::Http {
                host: host(http)?,
                port: port("httpGet", http)?,
                path,
                headers,
            }
        } else if probe.get("grpc").is_some_and(|v| !v.is_null()) {
            return Err(
                "readinessProbe.grpc is not supported locally: use exec, tcpSocket or httpGet"
                    .into(),
            );
        } else {
            return Err(
                "readinessProbe has no exec, tcpSocket or httpGet: say how to check the service"
                    .into(),
            );
        };
        Ok(Probe {
            action,
            initial_delay: seconds("initialDelaySeconds", 0, 0)?,
            period: seconds("periodSeconds", 10, 1)?,
            timeout: seconds("timeoutSeconds", 1, 1)?,
            success_threshold: count("successThreshold", 1)?,
            failure_threshold: count("failureThreshold", 3)?,
        })
    }
}

impl std::fmt::Display for ProbeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeAction::Exec { command } => write!(f, "exec `{}`", command.join(" ")),
            ProbeAction::Tcp { host, port } => write!(f, "tcpSocket {host}:{port}"),
            ProbeAction::Http {
                host, port, path, ..
            } => write!(f, "httpGet http://{host}:{port}{path}"),
        }
    }
}

/// Opens a TCP connection to `host:port` within `timeout`.
///
/// # Errors
/// What went wrong (the address cannot be resolved, the connection is
/// refused or times out).
pub fn tcp_check(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    connect(host, port, timeout).map(drop)
}

/// Sends `GET path` to `host:port` and checks that the status is 200..=399.
///
/// # Errors
/// What went wrong, with the status line when there was one.
pub fn http_check(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let mut stream = connect(host, port, timeout)?;
    let io = |err: std::io::Error| format!("GET {path}: {err}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n");
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        request.push_str("User-Agent: kube-probe/1.0 (testkube-rs)\r\n");
    }
    if !has("accept") {
        request.push_str("Accept: */*\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(err) => return Err(io(err)),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default().trim();
    let status = line
        .strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            if line.is_empty() {
                format!("GET {path}: the connection closed without an answer")
            } else {
                format!("GET {path}: not an HTTP answer: `{line}`")
            }
        })?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered `{line}`"))
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {host}:{port}: {err}"))?
        .collect();
    let mut last = format!("{host}:{port} has no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = format!("cannot connect to {address}: {err}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(probe: Value) -> Result<Probe, String> {
        Probe::parse(&probe, |text| Ok(text.replace("{{ port }}", "8080")))
    }

    #[test]
    fn kubernetes_defaults_apply() {
        let probe = parse(json!({"tcpSocket": {"port": 5432}})).unwrap();
        assert_eq!(
            probe.action,
            ProbeAction::Tcp {
                host: SERVICE_HOST.into(),
                port: 5432
            }
        );
        assert_eq!(probe.period, Duration::from_secs(10));
        assert_eq!(probe.timeout, Duration::from_secs(1));
        assert_eq!(probe.initial_delay, Duration::ZERO);
        assert_eq!((probe.success_threshold, probe.failure_threshold), (1, 3));
    }

    #[test]
    fn http_probes_take_templates_and_headers() {
        let probe = parse(json!({
            "httpGet": {"path": "health", "port": "{{ port }}", "httpHeaders": [{"name": "X-A", "value": "1"}]},
            "periodSeconds": 0, "initialDelaySeconds": 2
        }))
        .unwrap();
        assert_eq!(
            probe.action,
            ProbeAction::Http {
                host: SERVICE_HOST.into(),
                port: 8080,
                path: "/health".into(),
                headers: vec![("X-A".into(), "1".into())],
            }
        );
        assert_eq!(probe.period, Duration::from_secs(1), "at least one second");
        assert_eq!(probe.initial_delay, Duration::from_secs(2));
        assert_eq!(
            probe.action.to_string(),
            "httpGet http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn unusable_probes_say_what_to_write() {
        let named = parse(json!({"httpGet": {"port": "http"}})).unwrap_err();
        assert!(named.contains("write the number"), "{named}");
        let https = parse(json!({"httpGet": {"port": 1, "scheme": "HTTPS"}})).unwrap_err();
        assert!(https.contains("HTTPS"), "{https}");
        assert!(
            parse(json!({"grpc": {"port": 1}}))
                .unwrap_err()
                .contains("grpc")
        );
        assert!(
            parse(json!({"exec": {"command": []}}))
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            parse(json!({"periodSeconds": 1}))
                .unwrap_err()
                .contains("no exec")
        );
        assert!(
            parse(json!({"tcpSocket": {"port": 1}, "periodSeconds": -1}))
                .unwrap_err()
                .contains("periodSeconds")
        );
    }

    #[test]
    fn http_checks_read_the_status() {
        let listener = std::net::TcpListener::bind((SERVICE_HOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in [
                "HTTP/1.0 204 No Content\r\n\r\n",
                "HTTP/1.1 503 Unavailable\r\n\r\n",
            ] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = [0u8; 1024];
                let n = stream.read(&mut request).unwrap();
                assert!(request[..n].starts_with(b"GET /ready HTTP/1.0\r\n"));
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        let timeout = Duration::from_secs(5);
        assert_eq!(
            http_check(SERVICE_HOST, port, "/ready", &[], timeout),
            Ok(())
        );
        let failed = http_check(SERVICE_HOST, port, "/ready", &[], timeout).unwrap_err();
        assert!(failed.contains("503"), "{failed}");
        server.join().unwrap();
    }
}
