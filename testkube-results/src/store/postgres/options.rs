//! [`PostgresOptions`]: how a [`PostgresStore`](super::PostgresStore) connects, and the defaults.

use std::time::Duration;

/// How long an execution's owner may go without a heartbeat before other stores count the
/// execution as abandoned (`recover_abandoned`, `claim_abandoned`): 30 seconds, three beats at
/// the default [`heartbeat_interval`](super::PostgresStore::heartbeat_interval) (10 s). Long
/// enough that a busy database or a briefly stalled process does not lose its runs, short enough
/// that a replacement takes over a dead process's runs within a minute.
pub const ABANDON_AFTER: Duration = Duration::from_secs(30);

/// The most connections a store's pool opens by default: enough for the engine's concurrent
/// writers of a busy process, small next to PostgreSQL's usual `max_connections` of 100 shared
/// by every process.
pub const MAX_CONNECTIONS: u32 = 10;

/// How long connecting may take by default (see [`PostgresOptions::connect_timeout`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to connect a [`PostgresStore`](super::PostgresStore): the URL and the few settings that
/// differ between deployments and tests.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub(super) url: String,
    pub(super) schema: Option<String>,
    pub(super) max_connections: u32,
    pub(super) connect_timeout: Duration,
    pub(super) abandon_after: Duration,
    pub(super) owner: Option<String>,
}

impl PostgresOptions {
    /// Connects to `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...`: the
    /// parameters sqlx's PostgreSQL driver reads) with the defaults: the connection's own
    /// `search_path`, [`MAX_CONNECTIONS`], [`ABANDON_AFTER`] and a new owner identity.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: None,
            max_connections: MAX_CONNECTIONS,
            connect_timeout: CONNECT_TIMEOUT,
            abandon_after: ABANDON_AFTER,
            owner: None,
        }
    }

    /// Keeps the tables in schema `name` (created when missing): every connection's
    /// `search_path` is set to it. A plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63
    /// bytes); anything else is refused when connecting.
    #[must_use]
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// At most `max` connections in the pool (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Gives up connecting after `timeout` ([`CONNECT_TIMEOUT`] by default): the first
    /// connection when the store connects, and any later one the pool opens when the database was
    /// unreachable for a while.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Counts another owner's unfinished execution as abandoned when its last heartbeat is older
    /// than `after` ([`ABANDON_AFTER`] by default). Every store sharing a database should use the
    /// same value, and heartbeat well within it.
    #[must_use]
    pub fn abandon_after(mut self, after: Duration) -> Self {
        self.abandon_after = after;
        self
    }

    /// The owner identity written on the executions this store creates or claims, instead of a
    /// new `HOST/PID/RANDOM`. It must be unique among the stores alive at one time: two live
    /// stores with one identity take each other's executions for their own.
    #[must_use]
    pub fn owner(mut self, identity: impl Into<String>) -> Self {
        self.owner = Some(identity.into());
        self
    }
}
