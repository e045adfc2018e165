//! Steps as plain processes on this machine, each in its own process group,
//! with stdout and stderr on one pipe (so their order is kept).

use std::io::Read;
use std::process::{ExitStatus, Stdio};

use async_trait::async_trait;
use bytes::Bytes;

use super::group;
use crate::runner::{Launcher, Process, ProcessEnd, StepOutput, StopSignal};

/// Launches steps directly; `prefix` (e.g. `setpriv --pdeathsig KILL --`)
/// comes before each command.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostLauncher {
    pub(crate) prefix: Vec<String>,
}

#[async_trait]
impl Launcher for HostLauncher {
    async fn launch(
        &self,
        process: Process,
        output: StepOutput,
        mut stop: StopSignal,
    ) -> std::io::Result<ProcessEnd> {
        std::fs::create_dir_all(&process.working_dir)?;
        let mut argv = self.prefix.iter().chain(&process.argv);
        let Some(program) = argv.next() else {
            return Err(std::io::Error::other("empty command"));
        };
        let (mut reader, writer) = std::io::pipe()?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(argv)
            .envs(process.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&process.working_dir)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0)
            .kill_on_drop(true);
        let spawned = command.spawn();
        // The command holds the pipe's write end: drop it so the pipe
        // closes when the step's processes are gone.
        drop(command);
        let mut child = spawned?;
        let pgid = child.id().unwrap_or_default();
        let pump = tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => output.write_blocking(Bytes::copy_from_slice(&buffer[..n])),
                }
            }
        });
        let end = tokio::select! {
            status = child.wait() => ProcessEnd::Exited(exit_code(status?)),
            stop = stop.fired() => {
                group::terminate(pgid);
                if tokio::time::timeout(group::GRACE, child.wait()).await.is_err() {
                    group::kill(pgid);
                    let _ = child.wait().await;
                }
                StopSignal::end(stop)
            }
        };
        // Nothing a step started outlives it (as when its container ends).
        group::kill(pgid);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), pump).await;
        Ok(end)
    }
}

/// The exit code, or 128 + the signal that killed the process (as shells do).
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}
