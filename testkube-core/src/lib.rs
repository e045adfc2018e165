//! The TestWorkflow model, its expression language, template resolution, the
//! compiler to an execution plan and the shard planner.
//!
//! This crate is sans-IO: it never spawns processes, opens sockets or touches
//! a database. Everything here is pure data in, data out, so that the engine,
//! the executors and every frontend agree on one meaning of a workflow.
#![warn(missing_docs)]

pub mod diagnostic;
pub mod expr;
pub mod model;
pub mod plan;
pub mod resolve;
pub mod shard;
pub mod validate;
pub mod yaml;
