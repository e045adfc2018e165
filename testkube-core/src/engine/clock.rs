//! The wall clock the engine and the run service read.
//!
//! Why a trait: event times, summaries and record timestamps come from
//! wall-clock time, which tests and replays want to fix; the engine's
//! timers (deadlines, timeouts, retries) use tokio's clock, which tests
//! pause (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`), so
//! no test waits for real.

use std::time::SystemTime;

/// Where the engine reads the wall-clock time from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
