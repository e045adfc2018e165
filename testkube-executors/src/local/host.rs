//! Steps as plain processes on this machine, each in its own process group,
//! with stdout and stderr on one pipe (so their order is kept), and every
//! group listed with the worker's [`Watchdog`] while it runs.

use std::io::Read;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use testkube_core::store::MAX_LOG_CHUNK;
use tokio::sync::watch;

use super::watchdog::Watchdog;
use super::{group, limits};
use crate::runner::{
    Background, GroupSignal, Launcher, Limits, Process, ProcessEnd, StepOutput, StopSignal,
};

/// Launches steps directly; `prefix` (e.g. `setpriv --pdeathsig KILL --`)
/// comes before each command.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostLauncher {
    prefix: Vec<String>,
    limits_noticed: Arc<AtomicBool>,
    /// Kills the worker's groups if the runner dies (none when it cannot
    /// start, or outside a tokio runtime).
    watchdog: Option<Arc<Watchdog>>,
}

impl HostLauncher {
    /// A launcher putting `prefix` before each command.
    pub(crate) fn new(prefix: Vec<String>) -> Self {
        let watchdog = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|_| Watchdog::start().ok())
            .map(Arc::new);
        HostLauncher {
            prefix,
            limits_noticed: Arc::default(),
            watchdog,
        }
    }
}

impl HostLauncher {
    /// Starts `process` (behind the prefix and its limits) in a group of
    /// its own that the watchdog kills if the runner dies.
    async fn start_watched(
        &self,
        process: &Process,
        output: StepOutput,
    ) -> std::io::Result<Started> {
        std::fs::create_dir_all(&process.working_dir)?;
        notice_limits(&self.limits_noticed, &process.limits, &output).await;
        let argv: Vec<String> = self
            .prefix
            .iter()
            .cloned()
            .chain(limits::wrap_argv(&process.limits, process.argv.clone()))
            .collect();
        let started = start(&argv, process, output)?;
        if let Some(watchdog) = &self.watchdog {
            watchdog.watch(started.pgid);
        }
        Ok(started)
    }
}

#[async_trait]
impl Launcher for HostLauncher {
    async fn launch(
        &self,
        process: Process,
        output: StepOutput,
        mut stop: StopSignal,
    ) -> std::io::Result<ProcessEnd> {
        let mut started = self.start_watched(&process, output).await?;
        let pgid = started.pgid;
        let waited = tokio::select! {
            status = started.child.wait() => Ok(status),
            stop = stop.fired() => {
                group::terminate(pgid);
                if tokio::time::timeout(group::GRACE, started.child.wait()).await.is_err() {
                    group::kill(pgid);
                    let _ = started.child.wait().await;
                }
                Err(stop)
            }
        };
        // Nothing a step started outlives it (as when its container ends).
        group::kill(pgid);
        if let Some(watchdog) = &self.watchdog {
            watchdog.forget(pgid);
        }
        let tail = started.output_tail().await;
        match waited {
            Ok(status) => Ok(limits::classify(&process.limits, exit_code(status?), &tail)),
            Err(stop) => Ok(StopSignal::end(stop)),
        }
    }

    async fn spawn(&self, process: Process, output: StepOutput) -> std::io::Result<Background> {
        let started = self.start_watched(&process, output).await?;
        Ok(started.into_background(self.watchdog.clone()))
    }

    async fn shutdown(&self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.close();
        }
    }
}

/// Tells the user once per launcher how `limits` are enforced.
pub(crate) async fn notice_limits(noticed: &AtomicBool, limits: &Limits, output: &StepOutput) {
    if !limits.is_empty() && !noticed.swap(true, Ordering::Relaxed) {
        output.notice(limits::notice(limits)).await;
    }
}

/// A started process: the child, its group and the thread pumping its
/// output (which returns the output's last bytes).
pub(crate) struct Started {
    child: tokio::process::Child,
    pgid: u32,
    pump: tokio::task::JoinHandle<limits::Tail>,
}

/// Starts `argv` in its own process group with `process`'s env and working
/// directory, stdout and stderr going to `output`.
pub(crate) fn start(
    argv: &[String],
    process: &Process,
    output: StepOutput,
) -> std::io::Result<Started> {
    let mut argv = argv.iter();
    let Some(program) = argv.next() else {
        return Err(std::io::Error::other("empty command"));
    };
    let (reader, writer) = std::io::pipe()?;
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
    // The command holds the pipe's write end: drop it so the pipe closes
    // when the process and everything it started are gone.
    drop(command);
    let child = spawned?;
    let pgid = child.id().unwrap_or_default();
    let pump = pump(reader, output);
    Ok(Started { child, pgid, pump })
}

/// Forwards what a step writes to `reader` (a pipe) until every writer has
/// closed it, in chunks of at most [`MAX_LOG_CHUNK`] bytes, on a thread of
/// its own; returns the output's last bytes.
///
/// Why a chunk at a time and waiting: the output is never held whole (a
/// step may print gigabytes), and when the engine or the store falls
/// behind, the pipe fills and the step's writes wait: backpressure instead
/// of memory.
pub(crate) fn pump(
    mut reader: impl Read + Send + 'static,
    output: StepOutput,
) -> tokio::task::JoinHandle<limits::Tail> {
    tokio::task::spawn_blocking(move || {
        let mut tail = limits::Tail::default();
        let mut buffer = vec![0u8; MAX_LOG_CHUNK];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => break,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buffer[..n]);
                    tail.push(&chunk);
                    output.write_blocking(chunk);
                }
            }
        }
        tail
    })
}

impl Started {
    /// The last bytes of the output, once the pipe has closed.
    async fn output_tail(self) -> Vec<u8> {
        output_tail(self.pump).await
    }

    /// Lets it run in the background: a task waits for its exit (then
    /// kills what is left of its group, and unlists it from `watchdog`);
    /// the handle signals the group.
    pub(crate) fn into_background(self, watchdog: Option<Arc<Watchdog>>) -> Background {
        let Started {
            mut child,
            pgid,
            pump,
        } = self;
        let (exit, exited) = watch::channel(None);
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => exit_code(status),
                Err(_) => -1,
            };
            // What the service started goes with it (as when its container ends).
            group::kill(pgid);
            if let Some(watchdog) = watchdog {
                watchdog.forget(pgid);
            }
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), pump).await;
            let _ = exit.send(Some(code));
        });
        Background::new(exited, move |signal| match signal {
            GroupSignal::Terminate => group::terminate(pgid),
            GroupSignal::Kill => group::kill(pgid),
        })
    }
}

/// The last bytes `pump` read, once its pipe has closed (waits at most a
/// second: a process may have handed the pipe to something detached).
pub(crate) async fn output_tail(pump: tokio::task::JoinHandle<limits::Tail>) -> Vec<u8> {
    match tokio::time::timeout(std::time::Duration::from_secs(1), pump).await {
        Ok(Ok(tail)) => tail.bytes().to_vec(),
        _ => Vec::new(),
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
