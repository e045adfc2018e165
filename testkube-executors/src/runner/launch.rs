//! The one thing the step runner needs from where it runs: start a process
//! as a step, stream its output, and stop it (with everything it started)
//! on a timeout or an interruption; start a service in the background and
//! stop it later. The local executor has two launchers (plain processes,
//! and a bubblewrap sandbox per worker); an in-pod runner would use plain
//! processes too.
//!
//! A [`Process`] also carries its `resources.limits` as [`Limits`]: the
//! launcher enforces what it can and reports a process that ran out of
//! memory as [`ProcessEnd::OutOfMemory`] rather than as a plain exit code,
//! so the user reads "out of memory" as they would for a pod.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use testkube_core::model::ContainerConfig;
use testkube_core::status::Interruption;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use testkube_core::engine::WorkerEvent;

/// Starts steps' processes.
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Runs `process` to its end, sending its output to `output`, and stops
    /// it (its whole process group) when `stop` says so.
    ///
    /// # Errors
    /// [`std::io::Error`] when the process cannot be started.
    async fn launch(
        &self,
        process: Process,
        output: StepOutput,
        stop: StopSignal,
    ) -> std::io::Result<ProcessEnd>;

    /// Starts `process` in the background (a service), sending its output
    /// to `output`; it runs until it exits or the returned handle stops it
    /// (or is dropped, which kills its whole process group).
    ///
    /// Launchers that cannot keep a process in the background (a remote
    /// shell per step, say) keep this default, which refuses: a step with
    /// `services` then fails, saying so.
    ///
    /// # Errors
    /// [`std::io::Error`] when the process cannot be started.
    async fn spawn(&self, process: Process, output: StepOutput) -> std::io::Result<Background> {
        let _ = (process, output);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this launcher cannot run services (background processes)",
        ))
    }

    /// Releases what the launcher holds (a sandbox) once the worker is done.
    async fn shutdown(&self) {}
}

/// A step's process, as the step sees the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables on top of the runner's own environment.
    pub env: Vec<(String, String)>,
    /// The working directory (created when missing), as the step sees it.
    pub working_dir: String,
    /// What it may use (`resources.limits`).
    pub limits: Limits,
}

/// `resources.limits` of a process, parsed from Kubernetes quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// `memory`, in bytes.
    pub memory: Option<u64>,
    /// `cpu`, in millicores (`500m` is 500, `2` is 2000).
    pub cpu_millis: Option<u64>,
}

impl Limits {
    /// The limits of a container, its quantities rendered with `render`
    /// (they may be `{{ }}` templates). Other resources than `memory` and
    /// `cpu` (e.g. `ephemeral-storage`) have no local meaning and are left out.
    ///
    /// # Errors
    /// A message naming the resource whose value is not a quantity.
    pub fn of_container(
        container: &ContainerConfig,
        render: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Self, String> {
        let mut limits = Limits::default();
        let Some(resources) = &container.resources else {
            return Ok(limits);
        };
        for (name, quantity) in &resources.limits {
            let text = render(&quantity.0)?;
            let parsed =
                parse_quantity(&text).map_err(|err| format!("resources.limits.{name}: {err}"))?;
            match name.as_str() {
                "memory" => limits.memory = Some(parsed.ceil_units(1)),
                "cpu" => limits.cpu_millis = Some(parsed.ceil_units(1000)),
                _ => {}
            }
        }
        Ok(limits)
    }

    /// Whether any limit is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpu_millis.is_none()
    }
}

/// A Kubernetes resource quantity as a number (`64Mi` is 67108864, `500m`
/// is 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantityValue(f64);

impl QuantityValue {
    /// The value as a float.
    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }

    /// The value times `scale`, rounded up (as Kubernetes rounds limits),
    /// saturating at `u64::MAX`.
    #[must_use]
    pub fn ceil_units(self, scale: u64) -> u64 {
        #[allow(clippy::cast_precision_loss)]
        let scaled = (self.0 * scale as f64).ceil();
        if scaled >= u64::MAX as f64 {
            u64::MAX
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let units = scaled as u64;
            units
        }
    }
}

/// Parses a Kubernetes quantity: a non-negative decimal number with an
/// optional suffix: binary `Ki Mi Gi Ti Pi Ei`, decimal `n u m k M G T P E`,
/// or an exponent `e3`/`E3`.
///
/// # Errors
/// A message saying what is wrong and what a quantity looks like.
pub fn parse_quantity(text: &str) -> Result<QuantityValue, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a quantity (write e.g. `64Mi`, `1G`, `500m` or `2`)");
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') {
        return Err(format!("`{text}` is negative: a limit must be at least 0"));
    }
    let split = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(bad());
    }
    let mantissa: f64 = number.parse().map_err(|_| bad())?;
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..].parse().map_err(|_| bad())?;
            10f64.powi(power)
        }
        _ => return Err(bad()),
    };
    let value = mantissa * multiplier;
    if value.is_finite() {
        Ok(QuantityValue(value))
    } else {
        Err(bad())
    }
}

/// Bytes as a quantity a user would write: `64Mi`, `1Gi`, else plain bytes.
#[must_use]
pub fn format_bytes(bytes: u64) -> String {
    for (suffix, unit) in [
        ("Ei", 1u64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// How a step's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this code (128 + N when killed by signal N).
    Exited(i32),
    /// It ended (with a failure) because it ran out of memory under its
    /// memory limit, as far as the launcher can tell.
    OutOfMemory(OutOfMemory),
    /// The deadline passed; the process group was killed.
    TimedOut,
    /// It was interrupted from outside; the process group was killed.
    Interrupted(Interruption),
}

impl ProcessEnd {
    /// The exit code, when the process exited on its own.
    #[must_use]
    pub fn exit_code(self) -> Option<i32> {
        match self {
            ProcessEnd::Exited(code) => Some(code),
            ProcessEnd::OutOfMemory(oom) => Some(oom.exit_code),
            ProcessEnd::TimedOut | ProcessEnd::Interrupted(_) => None,
        }
    }
}

/// A process that ran out of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory {
    /// Its exit code (128 + N when killed by signal N).
    pub exit_code: i32,
    /// The memory limit, in bytes.
    pub limit: u64,
    /// Whether the kernel said so (a cgroup OOM kill), rather than the
    /// launcher inferring it from how the process failed.
    pub certain: bool,
}

impl std::fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let likely = if self.certain { "" } else { "likely " };
        write!(
            f,
            "{likely}out of memory (limit {}): exited with code {}; raise \
             resources.limits.memory if the step needs more",
            format_bytes(self.limit),
            self.exit_code
        )
    }
}

/// Where a step's output goes: log events of the worker.
#[derive(Debug, Clone)]
pub struct StepOutput {
    pub(crate) step: String,
    pub(crate) events: mpsc::Sender<WorkerEvent>,
}

impl StepOutput {
    /// Sends one chunk of output.
    pub async fn write(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let _ = self
            .events
            .send(WorkerEvent::Log {
                step: self.step.clone(),
                chunk,
            })
            .await;
    }

    /// Tells the user something once (e.g. how limits are enforced).
    pub async fn notice(&self, message: String) {
        let _ = self.events.send(WorkerEvent::Notice { message }).await;
    }

    /// Sends one chunk from a thread that is not async.
    pub fn write_blocking(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let _ = self.events.blocking_send(WorkerEvent::Log {
            step: self.step.clone(),
            chunk,
        });
    }
}

/// When a process must stop: a deadline (the nearest `timeout` of the step
/// and its parents) and interruptions from outside.
#[derive(Debug, Clone)]
pub struct StopSignal {
    pub(crate) deadline: Option<Instant>,
    pub(crate) interrupt: watch::Receiver<Option<Interruption>>,
}

/// Why a [`StopSignal`] fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    Deadline,
    /// An interruption from outside.
    Interrupted(Interruption),
}

impl StopSignal {
    /// Waits until the process must stop.
    pub async fn fired(&mut self) -> Stop {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            let fired = self
                .interrupt
                .wait_for(Option::is_some)
                .await
                .ok()
                .map(|value| *value);
            match fired.flatten() {
                Some(interruption) => interruption,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => Stop::Deadline,
            interruption = interrupt => Stop::Interrupted(interruption),
        }
    }

    /// Whether it has already fired.
    #[must_use]
    pub fn check(&self) -> Option<Stop> {
        let interruption = *self.interrupt.borrow();
        if let Some(interruption) = interruption {
            return Some(Stop::Interrupted(interruption));
        }
        match self.deadline {
            Some(at) if at <= Instant::now() => Some(Stop::Deadline),
            _ => None,
        }
    }

    /// The process end for a stop.
    #[must_use]
    pub fn end(stop: Stop) -> ProcessEnd {
        match stop {
            Stop::Deadline => ProcessEnd::TimedOut,
            Stop::Interrupted(interruption) => ProcessEnd::Interrupted(interruption),
        }
    }
}

/// Which signal [`Background::stop`] sends to a background process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSignal {
    /// `SIGTERM`: asks it to stop.
    Terminate,
    /// `SIGKILL`.
    Kill,
}

/// A process running in the background (a service): its exit code once it
/// has exited, and a way to signal its whole process group. Dropping it
/// kills the group, so nothing outlives the handle.
pub struct Background {
    exit: watch::Receiver<Option<i32>>,
    signal: Box<dyn Fn(GroupSignal) + Send + Sync>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("exit", &*self.exit.borrow())
            .finish_non_exhaustive()
    }
}

impl Background {
    /// A handle from the launcher's parts: `exit` gets the exit code (128 +
    /// N for signal N) when the process has exited, and `signal` signals
    /// its process group (it is not called after the exit).
    pub fn new(
        exit: watch::Receiver<Option<i32>>,
        signal: impl Fn(GroupSignal) + Send + Sync + 'static,
    ) -> Self {
        Background {
            exit,
            signal: Box::new(signal),
        }
    }

    /// The exit code, if it has exited.
    #[must_use]
    pub fn exit_code(&self) -> Option<i32> {
        *self.exit.borrow()
    }

    /// A receiver that gets the exit code.
    #[must_use]
    pub fn exit_watch(&self) -> watch::Receiver<Option<i32>> {
        self.exit.clone()
    }

    /// Waits until it exits; its exit code (-1 when the launcher lost it).
    pub async fn exited(&mut self) -> i32 {
        wait_exit(&mut self.exit).await
    }

    /// Signals its process group (nothing once it has exited).
    pub fn signal(&self, signal: GroupSignal) {
        if self.exit_code().is_none() {
            (self.signal)(signal);
        }
    }

    /// Stops it: `SIGTERM` to its group, `SIGKILL` after `grace`. Returns
    /// its exit code.
    pub async fn stop(&mut self, grace: Duration) -> i32 {
        if let Some(code) = self.exit_code() {
            return code;
        }
        (self.signal)(GroupSignal::Terminate);
        if let Ok(code) = tokio::time::timeout(grace, wait_exit(&mut self.exit)).await {
            return code;
        }
        (self.signal)(GroupSignal::Kill);
        wait_exit(&mut self.exit).await
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.exit_code().is_none() {
            (self.signal)(GroupSignal::Kill);
        }
    }
}

/// Waits for the exit code in `exit`; -1 when its sender is gone first.
pub async fn wait_exit(exit: &mut watch::Receiver<Option<i32>>) -> i32 {
    let waited = exit.wait_for(Option::is_some).await.map(|code| *code);
    match waited {
        Ok(code) => code.unwrap_or(-1),
        Err(_) => exit.borrow().unwrap_or(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Result<u64, String> {
        parse_quantity(text).map(|q| q.ceil_units(1))
    }

    #[test]
    fn memory_quantities_parse_to_bytes() {
        assert_eq!(bytes("64Mi"), Ok(64 * 1024 * 1024));
        assert_eq!(bytes("1G"), Ok(1_000_000_000));
        assert_eq!(bytes("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(bytes("128974848"), Ok(128_974_848));
        assert_eq!(bytes("129e6"), Ok(129_000_000));
        assert_eq!(bytes("123k"), Ok(123_000));
        assert_eq!(bytes(" 2Ki "), Ok(2048));
        assert_eq!(bytes("+1"), Ok(1));
    }

    #[test]
    fn cpu_quantities_parse_to_millicores() {
        let millis = |text: &str| parse_quantity(text).map(|q| q.ceil_units(1000));
        assert_eq!(millis("500m"), Ok(500));
        assert_eq!(millis("2"), Ok(2000));
        assert_eq!(millis("0.1"), Ok(100));
        assert_eq!(millis("1500u"), Ok(2), "rounded up");
    }

    #[test]
    fn bad_quantities_say_what_a_quantity_is() {
        for text in [
            "", "Mi", "64 Mi", "64MB", "1.2.3", "-1Gi", "e3", "1e", "1ex", ".",
        ] {
            let err = parse_quantity(text).expect_err(text);
            assert!(err.contains(text.trim()), "{err}");
        }
        assert!(parse_quantity("-1Gi").unwrap_err().contains("negative"));
        assert!(parse_quantity("64MB").unwrap_err().contains("64Mi"));
    }

    #[test]
    fn bytes_are_shown_as_written() {
        assert_eq!(format_bytes(64 * 1024 * 1024), "64Mi");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(1_000_000_000), "1000000000");
        assert_eq!(format_bytes(0), "0");
    }

    #[test]
    fn out_of_memory_messages_name_the_limit() {
        let oom = OutOfMemory {
            exit_code: 137,
            limit: 64 << 20,
            certain: false,
        };
        let text = oom.to_string();
        assert!(
            text.starts_with("likely out of memory (limit 64Mi)"),
            "{text}"
        );
        assert!(text.contains("137"), "{text}");
    }
}
