//! Runnable examples live next to this file; see README.md.
