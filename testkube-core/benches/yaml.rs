//! Loading a ~1 MB workflow-like YAML file: `load_documents`, and
//! `load_documents` followed by `to_json`, and the whole of `testkube validate`
//! (`validate::load_file`: load, typed read, semantic and expression checks).
//!
//! Run with `cargo bench -p testkube-core --bench yaml`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use testkube_core::validate::load_file;
use testkube_core::yaml::{LoadOptions, load_documents};

/// A workflow with many steps, each with the fields real steps carry
/// (container, env, resources, a block script, artifacts), about `target`
/// bytes long.
fn workflow(target: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: big\n  labels:\n    team: qa\nspec:\n  config:\n    shards: {type: integer, default: 100}\n  container:\n    image: node:22\n  steps:\n",
    );
    let mut i = 0;
    while yaml.len() < target {
        yaml.push_str(&format!(
            r#"  - name: "step {i}"
    condition: always
    timeout: 10m
    retry: {{count: 2, until: passed}}
    container:
      image: "registry.example.com/tests/runner:{i}"
      imagePullPolicy: IfNotPresent
      workingDir: /data/repo
      env:
      - name: SHARD
        value: "{i}"
      - name: LEVEL
        value: debug
      resources:
        requests: {{cpu: 500m, memory: 256Mi}}
        limits: {{cpu: 1, memory: 1Gi}}
    shell: |
      echo "running shard {i}"
      npm test -- --shard={i}/{{{{ config.shards }}}} --reporter=junit
    artifacts:
      paths: ["reports/*.xml", "coverage/**"]
"#
        ));
        i += 1;
    }
    yaml
}

fn bench(c: &mut Criterion) {
    let source = workflow(1024 * 1024);
    let options = LoadOptions::default();
    let mut group = c.benchmark_group("yaml");
    group.throughput(Throughput::Bytes(source.len() as u64));
    group.bench_function("load_documents 1MB", |b| {
        b.iter(|| load_documents(black_box(&source), &options))
    });
    group.bench_function("load_documents + to_json 1MB", |b| {
        b.iter(|| {
            load_documents(black_box(&source), &options)
                .map(|docs| docs.iter().map(|d| d.to_json()).collect::<Vec<_>>())
        })
    });
    let checked = load_file("big.yaml", source.as_bytes(), &options);
    if let Some(problem) = checked.diagnostics.first() {
        panic!("the generated workflow must be valid: {problem}");
    }
    group.bench_function("validate::load_file 1MB", |b| {
        b.iter(|| load_file("big.yaml", black_box(source.as_bytes()), &options))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
