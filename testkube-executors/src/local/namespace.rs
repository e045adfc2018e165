//! The sandbox without bubblewrap: the same mounts, made with the kernel's
//! unprivileged user and mount namespaces through util-linux's `unshare`
//! (the workspace forbids `unsafe`, so no system calls of our own).
//!
//! Steps write `/data`, `/tmp` and `/testkube` as they do in a pod, so a
//! worker must see its folders at those paths; plain processes cannot
//! (`/data` does not exist on the host, and only root could create it).
//! In a user namespace where we are root (`--map-root-user`: root inside
//! is the user outside, nothing more), with a mount namespace of our own,
//! the sandbox is built as bubblewrap builds it:
//!
//! 1. a tmpfs is mounted on an empty folder of the worker (`runner/root`)
//!    to be the new root, and the host's top-level symlinks are copied
//!    into it;
//! 2. one `mount -a` with a generated fstab binds each top-level entry of
//!    the host read-only, the worker's folders at `/data`, `/tmp` and
//!    `/testkube`, the runner's control folder, the host's `/dev`, and a
//!    fresh `/proc` of the worker's own pid namespace (one process for all
//!    mounts: a `mount` per entry made a sandbox cost ~150 ms);
//! 3. `unshare --root` enters it at `/data` and runs the command.
//!
//! The setup shell stays pid 1 of the pid namespace and runs the command
//! as its child, so a `SIGTERM` sent to the group reaches the command (pid
//! 1 ignores signals it has no handler for); `--kill-child` and
//! `setpriv --pdeathsig` end the namespace, and every process in it, with
//! the runner.
//!
//! Differences from bubblewrap: steps run as uid 0 inside (files they
//! create belong to the user outside); mounts below a top-level folder
//! (e.g. `/sys/...`) are not made read-only; `/dev` is the host's.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::sandbox::{RootEntry, quote, root_entries};
use crate::runner::WorkerPaths;

/// Runs each worker in a user, mount and pid namespace of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Namespace {
    unshare: PathBuf,
    /// `setpriv --pdeathsig KILL --` where installed.
    prefix: Vec<String>,
}

/// What the setup shell runs: `$1` the new root, `$2` the fstab, `$3`
/// `unshare`, then the command. The symlinks (`{links}`) are made inside
/// the new root.
const SETUP: &str = r#"set -e
R=$1 F=$2 U=$3
shift 3
mount -t tmpfs -o mode=0755 tmpfs "$R"
cd "$R"
{links}mount -a -T "$F"
cd /
exec 3<&0
"$U" --root="$R" --wd=/data "$@" <&3 3<&- &
wait $!
"#;

impl Namespace {
    /// The namespace sandbox when `unshare` is installed and the kernel
    /// lets this user build one (checked once per process by building a
    /// throwaway sandbox); otherwise why not.
    pub(crate) fn detect(prefix: &[String]) -> Result<Namespace, String> {
        static DETECTED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let unshare = DETECTED.get_or_init(|| {
            let unshare = super::find_program("unshare")
                .ok_or_else(|| "`unshare` (util-linux) is not installed either".to_owned())?;
            let namespace = Namespace {
                unshare: unshare.clone(),
                prefix: prefix.to_vec(),
            };
            namespace.probe().map(|()| unshare)
        });
        unshare.clone().map(|unshare| Namespace {
            unshare,
            prefix: prefix.to_vec(),
        })
    }

    /// The command line up to the command to run in the sandbox: writes
    /// the fstab and creates the root folder under `control`.
    pub(crate) fn argv(
        &self,
        paths: &WorkerPaths,
        control: &Path,
    ) -> std::io::Result<Vec<OsString>> {
        let root = control.join("root");
        std::fs::create_dir_all(&root)?;
        let entries = root_entries()?;
        let table = control.join("fstab");
        std::fs::write(&table, fstab(&entries, paths, control, &root))?;
        let mut argv: Vec<OsString> = self.prefix.iter().map(OsString::from).collect();
        argv.push(self.unshare.clone().into());
        argv.extend(
            [
                "--user",
                "--map-root-user",
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "/bin/sh",
                "-c",
            ]
            .map(OsString::from),
        );
        argv.push(SETUP.replace("{links}", &links(&entries)).into());
        argv.extend([
            OsString::from("sh"),
            root.into(),
            table.into(),
            self.unshare.clone().into(),
        ]);
        Ok(argv)
    }

    /// Builds a sandbox for an empty worker and runs `true` in it.
    fn probe(&self) -> Result<(), String> {
        let refused = |why: String| {
            format!("this kernel or system does not let `unshare` build the sandbox ({why})")
        };
        let dir = std::env::temp_dir().join(format!("testkube-probe-{}", std::process::id()));
        let paths = WorkerPaths::new(&dir, true);
        let result = paths
            .create()
            .and_then(|()| self.argv(&paths, &dir.join("runner")))
            .map_err(|err| refused(err.to_string()))
            .and_then(|argv| {
                std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .args(["/bin/sh", "-c", "[ -d /data ] && : >/data/probe"])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|err| refused(err.to_string()))
            })
            .and_then(|output| {
                let wrote = dir.join("data/probe").is_file();
                if output.status.success() && wrote {
                    return Ok(());
                }
                let stderr = String::from_utf8_lossy(&output.stderr);
                let first = stderr.lines().next().unwrap_or("no error output").trim();
                Err(refused(format!("{}: {first}", output.status)))
            });
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}

/// `ln -s` lines for the host's top-level symlinks (run inside the new root).
fn links(entries: &[RootEntry]) -> String {
    let mut out = String::new();
    for entry in entries {
        if let RootEntry::Symlink { name, target } = entry {
            let _ = writeln!(out, "ln -s {} {}", quote(target), quote(name));
        }
    }
    out
}

/// The mounts of the sandbox rooted at `root`, in order, as fstab lines.
fn fstab(entries: &[RootEntry], paths: &WorkerPaths, control: &Path, root: &Path) -> String {
    let mut out = String::new();
    let mut line = |source: &Path, target: &str, kind: &str, options: &str| {
        let target = root.join(target.trim_start_matches('/'));
        let _ = writeln!(
            out,
            "{} {} {kind} {options} 0 0",
            escape(&source.display().to_string()),
            escape(&target.display().to_string())
        );
    };
    for entry in entries {
        match entry {
            RootEntry::Folder { name } => {
                let path = format!("/{name}");
                // `nofail`: an entry that vanished is not worth failing for.
                line(
                    Path::new(&path),
                    &path,
                    "none",
                    "rbind,ro,nofail,X-mount.mkdir",
                );
            }
            RootEntry::Symlink { .. } | RootEntry::File { .. } => {}
        }
    }
    for (host, mount) in paths.mounts() {
        line(host, mount, "none", "bind,X-mount.mkdir");
    }
    line(
        control,
        super::sandbox::CONTROL,
        "none",
        "bind,X-mount.mkdir",
    );
    line(Path::new("/dev"), "/dev", "none", "rbind,X-mount.mkdir");
    line(
        Path::new("proc"),
        "/proc",
        "proc",
        "nosuid,nodev,noexec,X-mount.mkdir",
    );
    out
}

/// A path as an fstab field: whitespace and backslashes as octal escapes.
fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_fields_escape_whitespace() {
        assert_eq!(escape("/a b\\c\td"), "/a\\040b\\134c\\011d");
        let paths = WorkerPaths::new(Path::new("/runs/my run/0"), true);
        let entries = [
            RootEntry::Folder {
                name: "usr".to_owned(),
            },
            RootEntry::Symlink {
                name: "bin".to_owned(),
                target: "usr/bin".to_owned(),
            },
        ];
        let text = fstab(&entries, &paths, Path::new("/c"), Path::new("/c/root"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "/usr /c/root/usr none rbind,ro,nofail,X-mount.mkdir 0 0"
        );
        assert_eq!(
            lines[1],
            "/runs/my\\040run/0/data /c/root/data none bind,X-mount.mkdir 0 0"
        );
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(links(&entries), "ln -s 'usr/bin' 'bin'\n");
    }
}
