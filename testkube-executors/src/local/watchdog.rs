//! Nothing a worker started outlives its runner, even when the runner is
//! killed with `SIGKILL` and no sandbox is around to take its processes
//! along.
//!
//! `setpriv --pdeathsig KILL` only reaches a step's first process: a shell
//! script's children (`sleep 60`, a server a service script started) are
//! re-parented and live on. So each plain-process worker has a watchdog: a
//! tiny `sh`, in a process group of its own, reading a pipe whose write end
//! only the runner holds. The runner writes `+<pgid>` when it starts a step
//! or service group and `-<pgid>` when that group is gone; when the pipe
//! closes (the worker is done, or the kernel closed it because the runner
//! died in any way) the watchdog kills every group still listed and exits.
//! Groups are unlisted as soon as they end, so a recycled group id is never
//! hit. Writing a line costs microseconds; the watchdog runs on its own.

use std::io::{PipeWriter, Write};
use std::process::Stdio;
use std::sync::Mutex;

/// Lists the live groups; at end of input, kills those still listed.
const SCRIPT: &str = r#"live=' '
while read -r op; do
  case "$op" in
    +*) live="$live${op#+} " ;;
    -*) g="${op#-}"
        case "$live" in *" $g "*) live="${live%%" $g "*} ${live#*" $g "}" ;; esac ;;
  esac
done
for g in $live; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The runner's end of a watchdog.
#[derive(Debug)]
pub(crate) struct Watchdog {
    writer: Mutex<Option<PipeWriter>>,
}

impl Watchdog {
    /// Starts a watchdog (inside a tokio runtime, which reaps it).
    pub(crate) fn start() -> std::io::Result<Self> {
        let (reader, writer) = std::io::pipe()?;
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .args(["-c", SCRIPT])
            .stdin(reader)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = command.spawn()?;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Watchdog {
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Lists group `pgid`: it is killed if the runner dies.
    pub(crate) fn watch(&self, pgid: u32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// Unlists group `pgid` (it has ended).
    pub(crate) fn forget(&self, pgid: u32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// Closes the pipe: the watchdog kills what is still listed and exits.
    pub(crate) fn close(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
    }

    fn send(&self, line: &str) {
        if let Ok(mut writer) = self.writer.lock()
            && let Some(pipe) = writer.as_mut()
            // A watchdog that is gone cannot be helped: steps still run.
            && pipe.write_all(line.as_bytes()).is_err()
        {
            writer.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alive(pid: u32) -> bool {
        // A killed child of this test stays a zombie until reaped: look at
        // its state, not just whether /proc has it.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    }

    #[tokio::test]
    async fn closing_kills_the_listed_groups_only() {
        let spawn = || {
            use std::os::unix::process::CommandExt;
            let mut command = std::process::Command::new("sleep");
            command.arg("300").process_group(0);
            command.spawn().unwrap()
        };
        let (mut listed, mut ended) = (spawn(), spawn());
        let watchdog = Watchdog::start().unwrap();
        watchdog.watch(listed.id());
        watchdog.watch(ended.id());
        watchdog.forget(ended.id());
        watchdog.close();
        let mut waited = 0;
        while alive(listed.id()) && waited < 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert!(!alive(listed.id()), "the listed group is killed");
        assert!(alive(ended.id()), "an unlisted group is left alone");
        let _ = ended.kill();
        let _ = ended.wait();
        let _ = listed.wait();
    }
}
