//! Execution ids, from the service's [`Clock`] (see
//! [`crate::engine::Clock`] for why the clock is injected).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::engine::{Clock, SystemClock};

/// Allocates unique, sortable execution ids: `<workflow>-<unix millis>-<suffix>`
/// (the suffix is the process id unless set), never the same twice from
/// one service even when two runs start in the same millisecond.
#[derive(Debug)]
pub(crate) struct ExecutionIds {
    clock: Arc<dyn Clock>,
    suffix: String,
    last: AtomicU64,
}

impl ExecutionIds {
    pub(crate) fn new(clock: Arc<dyn Clock>, suffix: String) -> Self {
        ExecutionIds {
            clock,
            suffix,
            last: AtomicU64::new(0),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The next id for an execution of `workflow`.
    pub(crate) fn next(&self, workflow: &str) -> String {
        let now = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        // Strictly increasing: a second run in the same millisecond takes
        // the next one.
        let mut millis = now;
        let _ = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                millis = now.max(last.saturating_add(1));
                Some(millis)
            });
        let name = if workflow.is_empty() { "run" } else { workflow };
        format!("{name}-{millis}-{}", self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    struct Fixed(SystemTime);

    impl Clock for Fixed {
        fn now(&self) -> SystemTime {
            self.0
        }
    }

    #[test]
    fn ids_are_unique_even_within_one_millisecond() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let ids = ExecutionIds::new(Arc::new(Fixed(at)), "42".to_owned());
        assert_eq!(ids.next("smoke"), "smoke-1700000000000-42");
        assert_eq!(ids.next("smoke"), "smoke-1700000000001-42");
        assert_eq!(ids.next(""), "run-1700000000002-42");
    }
}
