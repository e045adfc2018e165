//! One sandbox per worker (bubblewrap, or the same built with `unshare`:
//! see `namespace.rs`), with a small step loop inside.
//!
//! Starting bubblewrap costs a few milliseconds, so the worker's sandbox is
//! started once: a long-lived `sh` (the driver) runs inside it and starts
//! each step on request, in its own session (`setsid`, so the step's
//! process group can be signalled without touching the driver). The runner
//! talks to the driver over its stdin/stdout and a control folder mounted
//! at `/.testkube-runner`: it writes `<id>.sh` (cd, env, exec), sends
//! `run <id>`, reads the step's output from `<id>.log`, and reads
//! `exit <id> <code>` back; `kill <id> <SIGNAL>` signals the step's group
//! (its pid is in `<id>.pid`).
//!
//! `<id>.log` is a named pipe, not a file: the runner reads it as the host
//! launcher reads a step's pipe, a bounded chunk at a time, so a step that
//! prints faster than the engine and the store keep up waits in its writes
//! instead of growing a file (or the runner's memory) by its whole log.
//!
//! The sandbox sees the host's root read-only (each top-level entry bound
//! on its own, so that `/data` can be created), the worker's folders at
//! `/data`, `/tmp` and `/testkube`, a fresh `/dev` and `/proc`, its own pid
//! namespace, and dies with the runner (`--die-with-parent`), taking every
//! process of the worker with it.
//!
//! Services run in a sandbox of their own with the same mounts (so they
//! share `/data`, `/tmp` and `/testkube` with the steps, and the host's
//! network, so `127.0.0.1` reaches them). The driver could background them
//! too, but a service runs while the steps that need it run, and one more
//! bubblewrap start (a few milliseconds) per service instance is nothing
//! next to a service's own start; in exchange its process group is a plain
//! host process group that is signalled directly, and a service cannot
//! hold up the driver's step loop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Mutex;

use super::group::GRACE;
use super::host::{notice_limits, output_tail, pump, start};
use super::limits;
use super::namespace::Namespace;
use crate::runner::{
    Background, Launcher, Process, ProcessEnd, StepOutput, StopSignal, WorkerPaths,
};

/// Where the control folder is mounted inside the sandbox.
pub(crate) const CONTROL: &str = "/.testkube-runner";

/// The driver: reads commands, starts steps in their own sessions.
///
/// A step costs two forks of the driver (a reporter that waits for it, and
/// the step's own subshell, which sources `<id>.sh` and `exec`s `setsid`
/// and then the command) but no extra shell start: exec'ing a shell per
/// step was most of the runner's per-step overhead. The step's pid (`$!`)
/// is its session and group id, so `kill -SIG -pid` reaches all it started.
const DRIVER: &str = r#"C=/.testkube-runner
while IFS=' ' read -r op id sig; do
  case "$op" in
    run) { ( . "$C/$id.sh" ) >"$C/$id.log" 2>&1 </dev/null & echo $! >"$C/$id.pid"; wait $!; echo "exit $id $?"; } & ;;
    kill) if [ -s "$C/$id.pid" ]; then read -r p <"$C/$id.pid" && kill -"$sig" -"$p" 2>/dev/null; fi ;;
  esac
done
"#;

/// What builds a worker's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Jail {
    /// `bwrap`.
    Bwrap(PathBuf),
    /// User and mount namespaces made with `unshare`.
    Namespace(Namespace),
}

impl Jail {
    /// The command line up to the command to run in the sandbox.
    fn argv(&self, paths: &WorkerPaths, control: &Path) -> std::io::Result<Vec<OsString>> {
        match self {
            Jail::Bwrap(bwrap) => bwrap_argv(bwrap, paths, control),
            Jail::Namespace(namespace) => namespace.argv(paths, control),
        }
    }
}

/// Runs steps inside one sandbox.
pub(crate) struct SandboxLauncher {
    driver: Mutex<Driver>,
    control: PathBuf,
    next: AtomicUsize,
    /// The sandbox's command line up to the command (for services).
    sandbox_argv: Vec<OsString>,
    limits_noticed: AtomicBool,
}

struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl SandboxLauncher {
    /// Starts the worker's sandbox; `control` is a host folder for the
    /// step scripts and logs.
    pub(crate) fn start(jail: &Jail, paths: &WorkerPaths, control: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(control)?;
        let sandbox_argv = jail.argv(paths, control)?;
        let mut command = tokio::process::Command::new(&sandbox_argv[0]);
        command.args(&sandbox_argv[1..]);
        command.args(["/bin/sh", "-c", DRIVER]);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("the sandbox has no stdout"))?;
        Ok(SandboxLauncher {
            driver: Mutex::new(Driver {
                child,
                stdin,
                lines: BufReader::new(stdout).lines(),
            }),
            control: control.to_path_buf(),
            next: AtomicUsize::new(1),
            sandbox_argv,
            limits_noticed: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl Launcher for SandboxLauncher {
    async fn launch(
        &self,
        process: Process,
        output: StepOutput,
        mut stop: StopSignal,
    ) -> std::io::Result<ProcessEnd> {
        notice_limits(&self.limits_noticed, &process.limits, &output).await;
        let id = format!("s{}", self.next.fetch_add(1, Ordering::Relaxed));
        let script = self.control.join(format!("{id}.sh"));
        std::fs::write(&script, step_script(Some(&id), &process))?;
        let log = LogPipe::create(&self.control.join(format!("{id}.log")))?;
        let pump = pump(log.reader, output);
        let mut driver = self.driver.lock().await;
        driver.send(&format!("run {id}\n")).await?;
        let mut stopped = None;
        let mut kill_at: Option<tokio::time::Instant> = None;
        let code = loop {
            let grace_over = async {
                match kill_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                line = driver.lines.next_line() => match line? {
                    Some(line) => if let Some(code) = exit_line(&line, &id) { break code },
                    None => return Err(std::io::Error::other("the sandbox exited")),
                },
                () = grace_over => {
                    driver.send(&format!("kill {id} KILL\n")).await?;
                    kill_at = None;
                },
                fired = stop.fired(), if stopped.is_none() => {
                    stopped = Some(fired);
                    driver.send(&format!("kill {id} TERM\n")).await?;
                    kill_at = Some(tokio::time::Instant::now() + GRACE);
                },
            }
        };
        // Nothing a step started outlives it (as when its container ends).
        driver.send(&format!("kill {id} KILL\n")).await?;
        drop(driver);
        // Now only what the step started holds the pipe open: its end is
        // the end of the step's output.
        drop(log.keep_open);
        let tail = output_tail(pump).await;
        for suffix in ["sh", "pid", "log"] {
            let _ = std::fs::remove_file(self.control.join(format!("{id}.{suffix}")));
        }
        Ok(match stopped {
            Some(stop) => StopSignal::end(stop),
            None => limits::classify(&process.limits, code, &tail),
        })
    }

    async fn spawn(&self, process: Process, output: StepOutput) -> std::io::Result<Background> {
        notice_limits(&self.limits_noticed, &process.limits, &output).await;
        let mut argv: Vec<String> = Vec::with_capacity(self.sandbox_argv.len() + 3);
        for arg in &self.sandbox_argv {
            argv.push(arg.clone().into_string().map_err(|arg| {
                std::io::Error::other(format!("a non-UTF-8 path in the sandbox: {arg:?}"))
            })?);
        }
        argv.extend([
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            step_script(None, &process),
        ]);
        // The env and working directory are set by the script inside;
        // the sandbox itself starts where the runner runs, since the mounts
        // may be relative paths.
        let outside = Process {
            argv: Vec::new(),
            env: Vec::new(),
            working_dir: ".".to_owned(),
            limits: process.limits,
        };
        // The sandbox ends with the runner (`--die-with-parent`, or
        // `--kill-child` under `setpriv --pdeathsig`) and takes its pid
        // namespace with it.
        Ok(start(&argv, &outside, output)?.into_background(None))
    }

    async fn shutdown(&self) {
        let mut driver = self.driver.lock().await;
        drop(driver.stdin.take());
        if tokio::time::timeout(Duration::from_secs(2), driver.child.wait())
            .await
            .is_err()
        {
            let _ = driver.child.start_kill();
        }
    }
}

impl Driver {
    async fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the sandbox is closed"))?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await
    }
}

/// `exit <id> <code>` for this step.
fn exit_line(line: &str, id: &str) -> Option<i32> {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("exit"), Some(found), Some(code)) if found == id => code.trim().parse().ok(),
        _ => None,
    }
}

/// The script the driver sources for one step (`id`), or a service runs:
/// enter the working directory, set the env and limits, exec the command
/// (a step in a session of its own).
fn step_script(id: Option<&str>, process: &Process) -> String {
    let mut script = String::new();
    let dir = quote(&process.working_dir);
    // `mkdir` is a process: only when the folder is missing.
    script.push_str(&format!(
        "{{ [ -d {dir} ] || mkdir -p {dir}; }} && cd {dir} || exit 126\n"
    ));
    let (plain, odd): (Vec<_>, Vec<_>) = process
        .env
        .iter()
        .partition(|(name, _)| is_shell_name(name));
    for (name, value) in plain {
        script.push_str(&format!("export {name}={}\n", quote(value)));
    }
    if let Some(line) = limits::script_line(&process.limits) {
        script.push_str(&line);
    }
    script.push_str("exec");
    if id.is_some() {
        // A session of its own, so the step's group can be signalled
        // without touching the driver.
        script.push_str(" setsid");
    }
    if !odd.is_empty() {
        // Names a shell cannot export (Kubernetes allows `a.b`): use env.
        script.push_str(" env");
        for (name, value) in odd {
            script.push(' ');
            script.push_str(&quote(&format!("{name}={value}")));
        }
    }
    for arg in &process.argv {
        script.push(' ');
        script.push_str(&quote(arg));
    }
    script.push('\n');
    script
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Single-quotes `text` for `sh`.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The bubblewrap command line up to the command: the host's root
/// read-only, a fresh `/dev` and `/proc`, the worker's folders, its own pid
/// namespace, ended with the runner.
fn bwrap_argv(bwrap: &Path, paths: &WorkerPaths, control: &Path) -> std::io::Result<Vec<OsString>> {
    let mut argv: Vec<OsString> = vec![bwrap.into()];
    for entry in root_entries()? {
        let (option, source, target) = match entry {
            RootEntry::Symlink { name, target } => ("--symlink", target, format!("/{name}")),
            RootEntry::Folder { name } | RootEntry::File { name } => {
                ("--ro-bind-try", format!("/{name}"), format!("/{name}"))
            }
        };
        argv.extend([option.into(), source.into(), target.into()]);
    }
    argv.extend(["--dev", "/dev", "--proc", "/proc"].map(OsString::from));
    for (host, mount) in paths.mounts() {
        argv.extend(["--bind".into(), host.into(), mount.into()]);
    }
    argv.extend(["--bind".into(), control.into(), OsString::from(CONTROL)]);
    argv.extend(["--die-with-parent", "--unshare-pid", "--chdir", "/data"].map(OsString::from));
    Ok(argv)
}

/// A top-level entry of the host's root, as a sandbox shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootEntry {
    /// A folder, bound read-only.
    Folder { name: String },
    /// Another file, bound read-only.
    File { name: String },
    /// A symlink (`/bin -> usr/bin`), copied as a symlink.
    Symlink { name: String, target: String },
}

/// The host's root, read-only: every top-level entry bound on its own
/// (binding `/` whole cannot create `/data` on a read-only root), symlinks
/// as symlinks; `/dev`, `/proc` and the workspace folders are added apart.
pub(crate) fn root_entries() -> std::io::Result<Vec<RootEntry>> {
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir("/")?.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(
            name.as_str(),
            "data" | "tmp" | "testkube" | "dev" | "proc" | ".testkube-runner"
        ) {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        found.push(if kind.is_symlink() {
            let target = std::fs::read_link(format!("/{name}"))?;
            RootEntry::Symlink {
                name,
                target: target.display().to_string(),
            }
        } else if kind.is_dir() {
            RootEntry::Folder { name }
        } else {
            RootEntry::File { name }
        });
    }
    Ok(found)
}

/// The named pipe a step writes its output to.
struct LogPipe {
    /// The read end, for [`pump`].
    reader: std::fs::File,
    /// A second opening, read and write: it lets the reader open without
    /// waiting for the step, and keeps the pipe from reading as ended
    /// before the step has opened it. Dropped once the step has exited.
    keep_open: std::fs::File,
}

impl LogPipe {
    fn create(path: &Path) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            path,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )?;
        // Opening a FIFO read-write never blocks (Linux); with that writer,
        // the read-only opening does not block either.
        let keep_open = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let reader = std::fs::File::open(path)?;
        Ok(LogPipe { reader, keep_open })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_scripts_quote_everything() {
        let process = Process {
            argv: vec!["/bin/sh".into(), "-c".into(), "echo 'hi'".into()],
            env: vec![("A".into(), "x y".into()), ("a.b".into(), "1".into())],
            working_dir: "/data/my dir".into(),
            limits: crate::runner::Limits {
                memory: Some(1 << 20),
                cpu_millis: None,
            },
        };
        let script = step_script(Some("s1"), &process);
        assert!(script.contains("ulimit -d 1024 || exit 126\n"), "{script}");
        assert!(script.contains("export A='x y'\n"), "{script}");
        assert!(
            script.ends_with("exec setsid env 'a.b=1' '/bin/sh' '-c' 'echo '\\''hi'\\'''\n"),
            "{script}"
        );
        assert!(script.contains("cd '/data/my dir'"), "{script}");
    }

    #[test]
    fn exit_lines_name_their_step() {
        assert_eq!(exit_line("exit s3 2", "s3"), Some(2));
        assert_eq!(exit_line("exit s3 2", "s4"), None);
        assert_eq!(exit_line("garbage", "s3"), None);
    }
}
