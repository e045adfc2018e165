//! `resources.limits` on this machine, and telling an out-of-memory end
//! from any other failure.
//!
//! A pod's limits are enforced by its cgroup. Locally the runner may not
//! own a cgroup (a laptop's session cgroup is not delegated to every
//! program, and a container rarely lets its processes create one), so the
//! memory limit is enforced with a resource limit that needs no privilege:
//! `RLIMIT_DATA` (`ulimit -d`), set by a tiny `sh` wrapper right before the
//! step's command. Since Linux 4.7 it counts the heap and every private
//! writable mapping, which is what "memory a program allocates" means to
//! most users; unlike `RLIMIT_AS` it does not count address space that is
//! only reserved (JVMs, Go and V8 reserve far more than they use, and
//! would not even start under an address-space limit of their pod's size).
//! It does not count shared memory or the page cache, which a cgroup would.
//!
//! What differs from a pod: the kernel does not kill the process; its
//! allocation fails and the program reports that its own way (Python's
//! `MemoryError`, `std::bad_alloc`, Rust's "memory allocation of N bytes
//! failed", a Go or Node.js fatal error) or crashes. [`classify`] looks at
//! the exit and the last output to report "likely out of memory" in those
//! cases. CPU limits need a cgroup's CPU controller: they are not enforced
//! locally, and the user is told so once per worker.

use bytes::Bytes;

use crate::runner::{Limits, OutOfMemory, ProcessEnd, format_bytes};

/// How many bytes of a process's last output are kept to classify its end.
pub(crate) const TAIL_BYTES: usize = 8 * 1024;

/// What the user is told once per worker when a step has limits.
pub(crate) fn notice(limits: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(memory) = limits.memory {
        parts.push(format!(
            "memory limits (here {}) are enforced as a data-size resource limit \
             (RLIMIT_DATA: heap and private memory, not shared memory or page cache): \
             an allocation beyond it fails inside the process, which is reported as \
             likely out of memory",
            format_bytes(memory)
        ));
    }
    if limits.cpu_millis.is_some() {
        parts.push(
            "CPU limits are not enforced locally (they need a cgroup's CPU controller); \
             the step runs with the machine's CPUs"
                .to_owned(),
        );
    }
    format!("resources.limits: {}", parts.join("; "))
}

/// `argv` wrapped so that it starts under `limits` (a `sh` that sets the
/// resource limit, then `exec`s the command); unchanged without a memory
/// limit.
pub(crate) fn wrap_argv(limits: &Limits, argv: Vec<String>) -> Vec<String> {
    let Some(memory) = limits.memory else {
        return argv;
    };
    let mut wrapped = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        r#"ulimit -d "$1" || exit 126; shift; exec "$@""#.to_owned(),
        "sh".to_owned(),
        kibibytes(memory).to_string(),
    ];
    wrapped.extend(argv);
    wrapped
}

/// The shell line that sets `limits` before a step script's `exec`.
pub(crate) fn script_line(limits: &Limits) -> Option<String> {
    limits
        .memory
        .map(|memory| format!("ulimit -d {} || exit 126\n", kibibytes(memory)))
}

/// `ulimit` counts KiB; a limit below 1 KiB still allows 1 KiB.
fn kibibytes(bytes: u64) -> u64 {
    bytes.div_ceil(1024).max(1)
}

/// How a process that exited with `code` under `limits` ended: out of
/// memory when it has a memory limit, failed, and either was killed by a
/// signal that allocation failures cause (`SIGKILL`, `SIGABRT`, `SIGSEGV`,
/// `SIGBUS`) or its last output says that an allocation failed.
pub(crate) fn classify(limits: &Limits, code: i32, tail: &[u8]) -> ProcessEnd {
    let Some(limit) = limits.memory else {
        return ProcessEnd::Exited(code);
    };
    let signalled = matches!(code, 134 | 135 | 137 | 139);
    if code != 0 && (signalled || mentions_allocation_failure(tail)) {
        return ProcessEnd::OutOfMemory(OutOfMemory {
            exit_code: code,
            limit,
            certain: false,
        });
    }
    ProcessEnd::Exited(code)
}

/// What runtimes print when an allocation fails.
fn mentions_allocation_failure(tail: &[u8]) -> bool {
    const MARKERS: [&str; 8] = [
        "memoryerror",
        "cannot allocate memory",
        "out of memory",
        "bad_alloc",
        "memory allocation of",
        "outofmemoryerror",
        "failed to allocate",
        "allocation failed",
    ];
    let text = String::from_utf8_lossy(tail).to_lowercase();
    MARKERS.iter().any(|marker| text.contains(marker))
}

/// The last [`TAIL_BYTES`] of a process's output.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    /// Keeps the end of `chunk`.
    pub(crate) fn push(&mut self, chunk: &Bytes) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > TAIL_BYTES {
            let cut = self.bytes.len() - TAIL_BYTES;
            self.bytes.drain(..cut);
        }
    }

    /// The kept bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITED: Limits = Limits {
        memory: Some(64 << 20),
        cpu_millis: None,
    };

    #[test]
    fn allocation_failures_are_out_of_memory() {
        let python =
            b"Traceback (most recent call last):\n  File \"<string>\", line 1\nMemoryError\n";
        assert!(matches!(
            classify(&LIMITED, 1, python),
            ProcessEnd::OutOfMemory(OutOfMemory { exit_code: 1, .. })
        ));
        assert!(matches!(
            classify(&LIMITED, 137, b""),
            ProcessEnd::OutOfMemory(_)
        ));
        assert_eq!(
            classify(&LIMITED, 1, b"assert failed"),
            ProcessEnd::Exited(1)
        );
        assert_eq!(classify(&LIMITED, 0, b"MemoryError"), ProcessEnd::Exited(0));
        assert_eq!(
            classify(&Limits::default(), 137, b"MemoryError"),
            ProcessEnd::Exited(137),
            "no limit: nothing to blame"
        );
    }

    #[test]
    fn only_memory_limits_wrap_the_command() {
        let argv = vec!["python3".to_owned()];
        assert_eq!(wrap_argv(&Limits::default(), argv.clone()), argv);
        let wrapped = wrap_argv(&LIMITED, argv);
        assert_eq!(wrapped[4], "65536");
        assert_eq!(wrapped.last().map(String::as_str), Some("python3"));
        assert_eq!(
            script_line(&LIMITED).as_deref(),
            Some("ulimit -d 65536 || exit 126\n")
        );
    }

    #[test]
    fn notices_say_what_is_enforced() {
        let both = Limits {
            memory: Some(1 << 30),
            cpu_millis: Some(500),
        };
        let text = notice(&both);
        assert!(
            text.contains("1Gi") && text.contains("RLIMIT_DATA"),
            "{text}"
        );
        assert!(text.contains("CPU limits are not enforced"), "{text}");
    }

    #[test]
    fn tails_keep_the_end() {
        let mut tail = Tail::default();
        tail.push(&Bytes::from(vec![b'a'; TAIL_BYTES]));
        tail.push(&Bytes::from_static(b"end"));
        assert_eq!(tail.bytes().len(), TAIL_BYTES);
        assert!(tail.bytes().ends_with(b"aend"));
    }
}
