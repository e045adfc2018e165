//! Container processes: signals as a container runtime sends them, exit
//! codes, termination messages.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use serde_json::Value;

/// SIGTERM goes to the container's main process only (the first process
/// below bwrap, PID 1 in the sandbox), as a container runtime sends it;
/// SIGKILL to the whole process group. A container that is still starting
/// (bwrap has not run the command yet) gets it once the command runs.
pub(super) fn signal(pid: i32, sig: rustix::process::Signal) {
    let Some(group) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    if sig != rustix::process::Signal::TERM {
        let _ = rustix::process::kill_process_group(group, sig);
        return;
    }
    tokio::spawn(async move {
        for _ in 0..200 {
            if let Some(main) = main_process(pid).and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(main, sig);
                return;
            }
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = rustix::process::kill_process_group(group, sig);
    });
}

/// The first descendant of `pid` that is not bwrap itself.
fn main_process(pid: i32) -> Option<i32> {
    let mut current = pid;
    for _ in 0..4 {
        let children =
            std::fs::read_to_string(format!("/proc/{current}/task/{current}/children")).ok()?;
        let child: i32 = children.split_whitespace().next()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
        if comm.trim() != "bwrap" {
            return Some(child);
        }
        current = child;
    }
    None
}

pub(super) fn exit_code(status: std::process::ExitStatus) -> i64 {
    status
        .code()
        .map_or_else(|| 128 + i64::from(status.signal().unwrap_or(9)), i64::from)
}

/// The termination message: the file (up to 4096 bytes), or with
/// `FallbackToLogsOnError` the log's tail when the file is empty and the
/// container failed.
pub(super) fn termination_message(
    c: &Value,
    dir: &std::path::Path,
    log: &std::path::Path,
    code: i64,
) -> String {
    let mut text = std::fs::read(dir.join("termination-log")).unwrap_or_default();
    text.truncate(4096);
    let mut message = String::from_utf8_lossy(&text).into_owned();
    if message.is_empty() && code != 0 && c["terminationMessagePolicy"] == "FallbackToLogsOnError" {
        let all = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = all
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |x| x.1))
            .collect();
        let tail = &lines[lines.len().saturating_sub(80)..];
        message = tail.join("\n");
        if message.len() > 2048 {
            let cut = message.len() - 2048;
            let cut = (cut..message.len())
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(cut);
            message = message[cut..].to_string();
        }
    }
    message
}
