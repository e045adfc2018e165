//! One service instance's life once started: its output (logged, and its
//! last lines kept for messages), waiting until its readiness probe passes
//! or it fails, and the supervisor that restarts it (`OnFailure`) and stops
//! it with its step.

use super::*;

/// What waiting for one instance to be ready needs.
pub(super) struct ReadyCheck {
    /// `service `web` instance 0`.
    pub(super) label: String,
    pub(super) probe: Option<Probe>,
    /// The instance's process (for `exec` probes: same env and folder).
    pub(super) process: Process,
    pub(super) exit: tokio::sync::watch::Receiver<Option<i32>>,
    pub(super) tail: KeptOutput,
    pub(super) timeout: Duration,
    /// Where "not ready yet" notes go (the step's log).
    pub(super) step: String,
    pub(super) events: mpsc::Sender<WorkerEvent>,
    pub(super) launcher: Arc<dyn Launcher>,
    pub(super) stop: StopSignal,
}

/// The last output of a service instance, and whether all of it arrived.
#[derive(Clone)]
pub(super) struct KeptOutput {
    pub(super) bytes: Arc<Mutex<Vec<u8>>>,
    pub(super) complete: tokio::sync::watch::Receiver<bool>,
}

impl KeptOutput {
    /// The last lines for a message, once the output is complete (the
    /// process has exited; waits at most a second for the last chunks).
    pub(super) async fn final_lines(&self) -> String {
        let mut complete = self.complete.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), complete.wait_for(|done| *done)).await;
        last_lines(&self.bytes)
    }
}

/// An output for a service instance: its last bytes are kept; its chunks
/// become the worker's log events of `step` when `keep` is set. Notices
/// always reach the worker.
pub(super) fn log_pipe(
    step: String,
    keep: bool,
    events: mpsc::Sender<WorkerEvent>,
) -> (StepOutput, KeptOutput, JoinHandle<()>) {
    let (sender, mut receiver) = mpsc::channel::<WorkerEvent>(64);
    let (complete, completed) = tokio::sync::watch::channel(false);
    let tail = KeptOutput {
        bytes: Arc::new(Mutex::new(Vec::new())),
        complete: completed,
    };
    let kept = Arc::clone(&tail.bytes);
    let forwarder = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            if let WorkerEvent::Log { chunk, .. } = &event {
                if let Ok(mut tail) = kept.lock() {
                    tail.extend_from_slice(chunk);
                    if tail.len() > KEPT_BYTES {
                        let cut = tail.len() - KEPT_BYTES;
                        tail.drain(..cut);
                    }
                }
                if !keep {
                    continue;
                }
            }
            let _ = events.send(event).await;
        }
        let _ = complete.send(true);
    });
    let output = StepOutput {
        step,
        events: sender,
    };
    (output, tail, forwarder)
}

/// Waits until the instance of `check` is ready: `Ok` with a note for the
/// step's log, or `Err` with why it is not.
pub(super) async fn wait_ready(check: ReadyCheck) -> Result<String, String> {
    let started = Instant::now();
    let give_up = started + check.timeout;
    let Some(probe) = check.probe.clone() else {
        return Ok(format!("{} started (no readiness probe)\n", check.label));
    };
    let mut last = String::from("no probe ran yet");
    let mut successes = 0;
    let mut failures = 0;
    let mut next = started + probe.initial_delay;
    loop {
        let mut exit = check.exit.clone();
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            code = super::super::launch::wait_exit(&mut exit) => return Err(exited(&check, code, &last).await),
            () = tokio::time::sleep_until(give_up) => return Err(not_ready(&check, &last)),
        }
        next = Instant::now() + probe.period;
        let result = tokio::select! {
            result = run_probe(&check, &probe) => result,
            code = super::super::launch::wait_exit(&mut exit) => return Err(exited(&check, code, &last).await),
            () = tokio::time::sleep_until(give_up) => return Err(not_ready(&check, &last)),
        };
        match result {
            Ok(()) => {
                successes += 1;
                failures = 0;
                if successes >= probe.success_threshold {
                    return Ok(format!(
                        "{} is ready ({} passed)\n",
                        check.label, probe.action
                    ));
                }
            }
            Err(message) => {
                successes = 0;
                failures += 1;
                last = message;
                if failures == probe.failure_threshold {
                    let note = format!(
                        "{} is not ready yet: {} failed {failures} times in a row ({last}); \
                         waiting up to {}s\n",
                        check.label,
                        probe.action,
                        check.timeout.as_secs()
                    );
                    let _ = check
                        .events
                        .send(WorkerEvent::Log {
                            step: check.step.clone(),
                            chunk: Bytes::from(note),
                        })
                        .await;
                }
            }
        }
    }
}

/// Runs one try of `probe` for `check`'s instance.
async fn run_probe(check: &ReadyCheck, probe: &Probe) -> Result<(), String> {
    let timeout = probe.timeout;
    match &probe.action {
        ProbeAction::Exec { command } => {
            let process = Process {
                argv: command.clone(),
                ..check.process.clone()
            };
            let (sender, mut receiver) = mpsc::channel(64);
            let output = StepOutput {
                step: String::new(),
                events: sender,
            };
            let mut stop = check.stop.clone();
            let at = Instant::now() + timeout;
            stop.deadline = Some(stop.deadline.map_or(at, |d| d.min(at)));
            let collect = async {
                let mut text = Vec::new();
                while let Some(event) = receiver.recv().await {
                    if let WorkerEvent::Log { chunk, .. } = event
                        && text.len() < KEPT_BYTES
                    {
                        text.extend_from_slice(&chunk);
                    }
                }
                text
            };
            let (end, text) = tokio::join!(check.launcher.launch(process, output, stop), collect);
            let said = String::from_utf8_lossy(&text).trim().to_owned();
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            match end {
                Ok(ProcessEnd::Exited(0)) => Ok(()),
                Ok(ProcessEnd::Exited(code)) => Err(format!("exited with code {code}{said}")),
                Ok(ProcessEnd::OutOfMemory(oom)) => Err(format!("{oom}{said}")),
                Ok(ProcessEnd::TimedOut) => Err(format!("timed out after {}s", timeout.as_secs())),
                Ok(ProcessEnd::Interrupted(_)) => Err("stopped from outside".to_owned()),
                Err(err) => Err(format!("cannot run it: {err}")),
            }
        }
        ProbeAction::Tcp { host, port } => {
            let (host, port) = (host.clone(), *port);
            blocking(move || tcp_check(&host, port, timeout)).await
        }
        ProbeAction::Http {
            host,
            port,
            path,
            headers,
        } => {
            let (host, port, path, headers) = (host.clone(), *port, path.clone(), headers.clone());
            blocking(move || http_check(&host, port, &path, &headers, timeout)).await
        }
    }
}

async fn blocking(
    check: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    tokio::task::spawn_blocking(check)
        .await
        .unwrap_or_else(|err| Err(format!("the probe failed: {err}")))
}

/// The message of an instance that exited before it was ready.
async fn exited(check: &ReadyCheck, code: i32, last: &str) -> String {
    format!(
        "{} exited with code {code} before it was ready (last probe: {last}){}",
        check.label,
        check.tail.final_lines().await
    )
}

/// The message of an instance that was not ready in time.
fn not_ready(check: &ReadyCheck, last: &str) -> String {
    let probe = check
        .probe
        .as_ref()
        .map_or_else(String::new, |probe| format!(" ({})", probe.action));
    format!(
        "{} was not ready within {}s{probe}: the last probe said: {last}{}",
        check.label,
        check.timeout.as_secs_f64(),
        last_lines(&check.tail.bytes)
    )
}

/// The last lines of an instance's output, for a message.
fn last_lines(tail: &Mutex<Vec<u8>>) -> String {
    let Ok(tail) = tail.lock() else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "; it printed nothing".to_owned();
    }
    let start = lines.len().saturating_sub(MESSAGE_LINES);
    let mut shown = String::from("; its last output:");
    for line in &lines[start..] {
        shown.push_str("\n  ");
        shown.push_str(line);
    }
    shown
}

/// What [`supervise`] needs.
pub(super) struct Supervised {
    pub(super) first: Background,
    pub(super) launcher: Arc<dyn Launcher>,
    pub(super) process: Process,
    pub(super) output: StepOutput,
    pub(super) label: String,
    pub(super) step: String,
    pub(super) events: mpsc::Sender<WorkerEvent>,
}

/// `restartPolicy: OnFailure`: restarts the instance whenever it exits with
/// a failure, after a doubling delay. The returned handle exits only when
/// the instance exits with code 0, cannot be started again, or is stopped.
pub(super) fn supervise(supervised: Supervised) -> Background {
    let (exit, exited) = tokio::sync::watch::channel(None);
    let (signals, mut requests) = mpsc::unbounded_channel::<GroupSignal>();
    tokio::spawn(async move {
        let Supervised {
            first,
            launcher,
            process,
            output,
            label,
            step,
            events,
        } = supervised;
        let mut current = first;
        let mut delay = FIRST_RESTART_DELAY;
        let mut stopping = false;
        let mut closed = false;
        let code = loop {
            let code = tokio::select! {
                code = current.exited() => code,
                request = requests.recv(), if !closed => {
                    stopping = true;
                    match request {
                        Some(signal) => current.signal(signal),
                        // The handle is gone: nothing may outlive it.
                        None => {
                            closed = true;
                            current.signal(GroupSignal::Kill);
                        }
                    }
                    continue;
                }
            };
            if code == 0 || stopping {
                break code;
            }
            let note = format!(
                "{label} exited with code {code}: restarting in {}s (restartPolicy OnFailure)\n",
                delay.as_secs()
            );
            let _ = events
                .send(WorkerEvent::Log {
                    step: step.clone(),
                    chunk: Bytes::from(note),
                })
                .await;
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = requests.recv() => break code,
            }
            delay = (delay * 2).min(MAX_RESTART_DELAY);
            match launcher.spawn(process.clone(), output.clone()).await {
                Ok(next) => current = next,
                Err(err) => {
                    let note = format!("{label} cannot be restarted: {err}\n");
                    let _ = events
                        .send(WorkerEvent::Log {
                            step: step.clone(),
                            chunk: Bytes::from(note),
                        })
                        .await;
                    break code;
                }
            }
        };
        let _ = exit.send(Some(code));
    });
    Background::new(exited, move |signal| {
        let _ = signals.send(signal);
    })
}
