//! The TestWorkflow model, its expression language, template resolution, the
//! compiler to an execution plan and the shard planner.
//!
//! This crate is sans-IO: it never spawns processes, opens sockets or touches
//! a database. Everything here is pure data in, data out, so that the engine,
//! the executors and every frontend agree on one meaning of a workflow.
//!
//! The flow of one workflow through this crate:
//!
//! ```text
//! bytes --validate::load_file--> Document (+ Diagnostics with FILE:LINE:COL)
//!       --resolve::resolve_workflow--> resolved TestWorkflow (templates, config applied)
//!       --plan::plan_workflow--> Plan (steps, conditions, workers with shards/matrix)
//! ```
//!
//! ```
//! use testkube_core::{LoadOptions, PlanOptions, ResolveOptions, TemplateSet, Document};
//!
//! let yaml = "
//! apiVersion: testworkflows.testkube.io/v1
//! kind: TestWorkflow
//! metadata: {name: hello}
//! spec:
//!   steps:
//!   - name: Say hello
//!     parallel:
//!       matrix: {browser: [chrome, firefox]}
//!       shell: echo {{ matrix.browser }}
//! ";
//! let file = testkube_core::load_file("hello.yaml", yaml.as_bytes(), &LoadOptions::default());
//! assert!(!file.has_errors(), "{:?}", file.diagnostics);
//! let Some(Document::TestWorkflow(workflow)) = &file.documents[0].document else { panic!() };
//! let templates = TemplateSet::with_builtins()?;
//! let resolved = testkube_core::resolve_workflow(workflow, &templates, &ResolveOptions::new(), None)?;
//! let plan = testkube_core::plan_workflow(resolved.workflow(), &PlanOptions::new())?;
//! let json = serde_json::to_string(&plan)?;
//! assert!(json.contains(r#""matrix":{"browser":"firefox"}"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod diagnostic;
pub mod engine;
pub mod expr;
pub mod model;
pub mod plan;
pub mod resolve;
pub mod schedule;
pub mod service;
pub mod shard;
pub mod status;
pub mod store;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use model::Document;
pub use plan::{Plan, PlanOptions, plan_workflow};
pub use resolve::{ResolveOptions, ResolvedWorkflow, TemplateSet, resolve_workflow};
pub use validate::{LoadedFile, load_file};
pub use yaml::LoadOptions;
