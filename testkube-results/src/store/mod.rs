//! Keeping results: the embedded SQLite [`ResultStore`](testkube_core::store::ResultStore)
//! ([`SqliteStore`]), the [`EventRecorder`] that persists an engine's events, and the
//! [`conformance`] suite every store implementation must pass.
//!
//! Why here: this crate already owns the normalized test model, and the store is where those
//! results end up; the trait itself lives in `testkube_core::store` so that the engine, the CLI
//! and embedders depend on the contract, not on SQLite.

pub mod conformance;
mod recorder;
mod schema;
mod sqlite;

pub use recorder::EventRecorder;
pub use sqlite::{DB_FILE, SqliteStore, default_path};

pub use crate::records::test_case_record;
