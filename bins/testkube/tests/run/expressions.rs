//! Run-time expressions end to end: `{{ env.X }}` is what the step's shell
//! sees as `$X`, however the variable is set, and `{{ step.results }}`
//! folders are shared by the steps of a worker and kept with the run; in a
//! bubblewrap sandbox (when installed) and as plain processes.

use std::path::{Path, PathBuf};

use super::{testkube_with, text};

const WORKFLOW: &str = r#"apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflowTemplate
metadata: {name: tools}
spec:
  container:
    env:
    - {name: FROM_TEMPLATE, value: template-value}
---
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata: {name: runexpr}
spec:
  use: [{name: tools}]
  container:
    env:
    - {name: GLOBAL, value: global-value, global: true}
    - {name: WORKFLOW, value: 'workflow-{{ env.GLOBAL }}'}
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: api, key: token}}
  steps:
  - name: Check env
    container:
      env:
      - {name: OVERRIDDEN, value: 'step-{{ env.WORKFLOW }}'}
    shell: |
      echo "GLOBAL {{ env.GLOBAL }}|$GLOBAL"
      echo "FROM_TEMPLATE {{ env.FROM_TEMPLATE }}|$FROM_TEMPLATE"
      echo "OVERRIDDEN {{ env.OVERRIDDEN }}|$OVERRIDDEN"
      echo "TOKEN {{ env.TOKEN }}|$TOKEN"
  - name: Run env
    run:
      env:
      - {name: FROM_RUN, value: 'run-{{ env.WORKFLOW }}'}
      shell: 'echo "FROM_RUN {{ env.FROM_RUN }}|$FROM_RUN"'
  - name: Worker
    parallel:
      container:
        env:
        - {name: FROM_WORKER, value: 'worker-{{ index }}'}
      shell: 'echo "FROM_WORKER {{ env.FROM_WORKER }}|$FROM_WORKER"'
  - id: write
    shell: 'echo hello > "{{ step.results }}/greeting.txt"'
  - id: read
    shell: 'echo "READ $(cat "{{ step.write.results }}/greeting.txt")"'
"#;

/// A folder with a link to `cat`, the one program the workflow needs
/// besides `/bin/sh`, and no `bwrap`: with it as `PATH` and
/// `TESTKUBE_SANDBOX=off`, `testkube run` runs plain processes.
fn plain_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cat = ["/usr/bin/cat", "/bin/cat"]
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .expect("cat is installed");
    std::os::unix::fs::symlink(cat, bin.join("cat")).unwrap();
    bin
}

#[test]
fn env_and_step_results_resolve_at_run_time() {
    for plain in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runexpr.yaml");
        std::fs::write(&file, WORKFLOW).unwrap();
        let path = plain_path(dir.path());
        let mut env = vec![("TESTKUBE_SECRET_API_TOKEN", "tok-31415")];
        let path = path.display().to_string();
        if plain {
            env.push(("PATH", &path));
            env.push(("TESTKUBE_SANDBOX", "off"));
        }
        let out = testkube_with(dir.path(), &["run", file.to_str().unwrap(), "--logs"], &env);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert_eq!(all.contains("steps run as plain processes"), plain, "{all}");
        for line in [
            "GLOBAL global-value|global-value",
            "FROM_TEMPLATE template-value|template-value",
            "OVERRIDDEN step-workflow-global-value|step-workflow-global-value",
            "FROM_RUN run-workflow-global-value|run-workflow-global-value",
            "FROM_WORKER worker-0|worker-0",
            // A variable from a secret is masked like the secret.
            "TOKEN ********|********",
            "READ hello",
        ] {
            assert!(all.contains(line), "{line} in {all}");
        }
        assert!(!all.contains("tok-31415"), "{all}");

        // The results folder is kept with the run's files.
        let runs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("home/runs"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let kept = runs[0].join("workers/root/data/.steps/write/greeting.txt");
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "hello\n");
    }
}
