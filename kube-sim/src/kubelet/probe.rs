//! Readiness probes: `exec` (a command in the container's view), `tcpSocket`
//! (a connection to the pod IP), `httpGet` (status 200-399), with
//! `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`,
//! `successThreshold` and `failureThreshold`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::sandbox::View;

fn port_of(container: &Value, port: &Value) -> Option<u16> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = port.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    container["ports"].as_array()?.iter().find(|p| p["name"] == name)?["containerPort"].as_u64().and_then(|n| u16::try_from(n).ok())
}

async fn once(probe: &Value, container: &Value, ip: &str, view: &View) -> bool {
    if let Some(command) = probe["exec"]["command"].as_array() {
        let args: Vec<String> = command.iter().filter_map(|c| c.as_str().map(str::to_string)).collect();
        let mut cmd = tokio::process::Command::new(&view.argv[0]);
        cmd.args(&view.argv[1..]).arg("--").args(&args);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        cmd.kill_on_drop(true);
        return cmd.status().await.is_ok_and(|s| s.success());
    }
    if let Some(tcp) = probe.get("tcpSocket") {
        let host = tcp["host"].as_str().unwrap_or(ip);
        let Some(port) = port_of(container, &tcp["port"]) else { return false };
        return TcpStream::connect((host, port)).await.is_ok();
    }
    if let Some(http) = probe.get("httpGet") {
        let host = http["host"].as_str().unwrap_or(ip);
        let Some(port) = port_of(container, &http["port"]) else { return false };
        let path = http["path"].as_str().unwrap_or("/");
        let Ok(mut stream) = TcpStream::connect((host, port)).await else { return false };
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nConnection: close\r\n");
        for h in http["httpHeaders"].as_array().into_iter().flatten() {
            request.push_str(&format!("{}: {}\r\n", h["name"].as_str().unwrap_or(""), h["value"].as_str().unwrap_or("")));
        }
        request.push_str("\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            return false;
        }
        let mut head = vec![0u8; 32];
        let Ok(n) = stream.read(&mut head).await else { return false };
        let text = String::from_utf8_lossy(&head[..n]);
        let code: u16 = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        return (200..400).contains(&code);
    }
    false
}

/// Probes until the receiver goes away, sending (container index, ready) on changes.
pub(crate) async fn run(probe: Value, container: Value, ip: String, view: View, index: usize, tx: mpsc::Sender<(usize, bool)>) {
    let secs = |key: &str, default: u64| probe[key].as_u64().unwrap_or(default);
    tokio::time::sleep(Duration::from_secs(secs("initialDelaySeconds", 0))).await;
    let period = Duration::from_secs(secs("periodSeconds", 10).max(1));
    let timeout = Duration::from_secs(secs("timeoutSeconds", 1).max(1));
    let (need_ok, need_fail) = (secs("successThreshold", 1), secs("failureThreshold", 3));
    let (mut oks, mut fails, mut ready) = (0u64, 0u64, false);
    loop {
        let ok = tokio::time::timeout(timeout, once(&probe, &container, &ip, &view)).await.unwrap_or(false);
        if ok {
            oks += 1;
            fails = 0;
        } else {
            fails += 1;
            oks = 0;
        }
        let next = if ok && oks >= need_ok { true } else if !ok && fails >= need_fail { false } else { ready };
        if next != ready {
            ready = next;
            if tx.send((index, ready)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = tx.closed() => return,
        }
    }
}
