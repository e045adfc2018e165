//! Embedding the planner: load a workflow from YAML, resolve it with config,
//! compile the plan with recorded durations, and split test files by duration.
//!
//! Run it with `cargo run --example plan_and_split`.

use std::num::NonZeroUsize;

use testkube_core::model::Document;
use testkube_core::plan::{PlanOptions, plan_workflow};
use testkube_core::resolve::{ResolveOptions, TemplateSet, resolve_workflow};
use testkube_core::shard::{DefaultDuration, Item, balance};
use testkube_core::validate::load_file;
use testkube_core::yaml::LoadOptions;

const WORKFLOW: &str = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: api-suite
spec:
  config:
    workers: {type: integer, default: 2}
  steps:
  - name: Run the suite
    parallel:
      count: '{{ config.workers }}'
      shards:
        file: [tests/test_a.py, tests/test_b.py, tests/test_c.py, tests/test_d.py]
      balance: {by: duration}
      shell: pytest {{ join(shard.file, " ") }}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Load and validate: every problem comes back as a Diagnostic with a position.
    let loaded = load_file(
        "api-suite.yaml",
        WORKFLOW.as_bytes(),
        &LoadOptions::default(),
    );
    for diagnostic in &loaded.diagnostics {
        eprintln!("{}", diagnostic.render(loaded.source.as_deref()));
    }
    let (document, node) = loaded
        .documents
        .iter()
        .find_map(|doc| match &doc.document {
            Some(Document::TestWorkflow(workflow)) => Some((workflow, &doc.node)),
            _ => None,
        })
        .ok_or("the file holds no valid TestWorkflow")?;

    // 2. Resolve templates and config (as `--config workers=3` would).
    let templates = TemplateSet::with_builtins()?;
    let options = ResolveOptions::new().with_config("workers", "3");
    let resolved = resolve_workflow(document, &templates, &options, Some(node))?;

    // 3. Plan, with the durations a previous run recorded.
    let durations = [
        ("tests/test_a.py", 120.0),
        ("tests/test_b.py", 30.0),
        ("tests/test_c.py", 60.0),
        ("tests/test_d.py", 25.0),
    ];
    let plan = plan_workflow(
        resolved.workflow(),
        &PlanOptions::new().with_duration_map(
            durations
                .iter()
                .map(|(file, s)| (file.to_string(), *s))
                .collect(),
        ),
    )?;
    let json = serde_json::to_value(&plan)?;
    for worker in find_workers(&json) {
        println!(
            "worker {}: {} (~{}s)",
            worker["index"], worker["shard"]["file"], worker["predictedSeconds"]
        );
    }

    // 4. The same balancing, directly: what `testkube split` does.
    let items: Vec<Item> = durations
        .iter()
        .map(|(file, seconds)| Item::new(*file, Some(*seconds)))
        .chain([Item::new("tests/test_new.py", None)])
        .collect();
    let split = balance(
        &items,
        NonZeroUsize::new(2).ok_or("two shards")?,
        &DefaultDuration::MeanOfKnown,
    );
    for (index, shard) in split.shards().iter().enumerate() {
        let names: Vec<_> = shard
            .items()
            .iter()
            .map(|&i| items[i].name.as_str())
            .collect();
        println!("shard {index}: {names:?} ~{:.1}s", shard.seconds());
    }
    println!(
        "makespan {:.1}s, lower bound {:.1}s",
        split.makespan_seconds(),
        split.lower_bound_seconds()
    );
    Ok(())
}

/// Every `workers` list in the plan, depth first.
fn find_workers(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut found = Vec::new();
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("workers", serde_json::Value::Array(workers)) => found.extend(workers),
                    _ => found.extend(find_workers(child)),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                found.extend(find_workers(item));
            }
        }
        _ => {}
    }
    found
}
