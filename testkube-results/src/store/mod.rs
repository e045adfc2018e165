//! Keeping results: the embedded SQLite [`ResultStore`](testkube_core::store::ResultStore)
//! (`SqliteStore`, feature `store`), the PostgreSQL one of a shared deployment
//! (`PostgresStore`, feature `postgres`), and the `conformance` suite every store
//! implementation must pass (feature `conformance`, which `store` includes; it needs only the
//! trait, so another store's tests can use it without SQLite). The [`EventRecorder`] that
//! persists an engine's events only calls the trait, so it lives with the run service in
//! `testkube_core::service` and is re-exported here.
//!
//! Why here: this crate already owns the normalized test model, and the store is where those
//! results end up; the trait itself lives in `testkube_core::store` so that the engine, the CLI
//! and embedders depend on the contract, not on a database.

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "store", feature = "postgres"))]
mod rows;
#[cfg(feature = "store")]
mod schema;
#[cfg(feature = "store")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::{
    ABANDON_AFTER, CONNECT_TIMEOUT, MAX_CONNECTIONS, PostgresOptions, PostgresStore,
};
#[cfg(feature = "store")]
pub use sqlite::{DB_FILE, SqliteStore, default_path};
pub use testkube_core::service::EventRecorder;

pub use crate::records::test_case_record;
