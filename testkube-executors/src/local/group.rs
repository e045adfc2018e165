//! Stopping a step together with everything it started: each step runs in
//! its own process group, and the whole group is signalled.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};

/// How long a step may take to exit after `SIGTERM` before `SIGKILL`.
pub(crate) const GRACE: Duration = Duration::from_secs(2);

/// Sends `signal` to process group `pgid`; a group that is already gone is
/// not an error.
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, signal);
    }
}

/// `SIGTERM` to the group.
pub(crate) fn terminate(pgid: u32) {
    signal_group(pgid, Signal::TERM);
}

/// `SIGKILL` to the group.
pub(crate) fn kill(pgid: u32) {
    signal_group(pgid, Signal::KILL);
}
