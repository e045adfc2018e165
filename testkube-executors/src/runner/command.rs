//! A step's command as a process: its argv (`shell` as `sh -e -c`), env and
//! working directory, started through the worker's launcher with the step's
//! deadline and interruption, and the outputs it wrote read back.

use super::*;

impl StepRunner {
    /// Runs a command of `step` and reads the outputs it wrote.
    pub(super) async fn command(
        &mut self,
        step: &PlanStep,
        container: &ContainerConfig,
        argv: Vec<String>,
    ) -> OperationEnd {
        if let (Some(image), false) = (&container.image, self.image_noticed) {
            self.image_noticed = true;
            self.notice(format!(
                "images are not pulled locally: steps run with this machine's tools \
                 (`{image}` is ignored)"
            ))
            .await;
        }
        let process = match self.process(container, argv) {
            Ok(process) => process,
            Err(message) => return OperationEnd::failed(message),
        };
        clear_dir(&self.paths.outputs_host());
        let output = StepOutput {
            step: step.id.clone(),
            events: self.events.clone(),
        };
        let end = match self
            .launcher
            .launch(process, output, self.stop_signal())
            .await
        {
            Ok(end) => end,
            Err(err) => return OperationEnd::failed(format!("cannot start the step: {err}")),
        };
        let exit_code = match end {
            ProcessEnd::Exited(code) => Some(code),
            ProcessEnd::OutOfMemory(oom) => Some(oom.exit_code),
            _ => None,
        };
        let outputs = self.collect_outputs(&step.id).await;
        if let Some(relay) = &self.relay {
            relay.record_attempt(&step.id, exit_code.map(i64::from), &outputs);
        }
        self.status
            .record_attempt(step.id.clone(), exit_code.map(i64::from), outputs);
        match end {
            ProcessEnd::Exited(code) => OperationEnd {
                status: leaf_status(CommandOutcome::Exited { code }, false),
                exit_code: Some(code),
                message: (code != 0).then(|| format!("exited with code {code}")),
            },
            ProcessEnd::OutOfMemory(oom) => OperationEnd {
                status: StepStatus::Failed,
                exit_code: Some(oom.exit_code),
                message: Some(oom.to_string()),
            },
            ProcessEnd::TimedOut => stopped(Stop::Deadline),
            ProcessEnd::Interrupted(interruption) => stopped(Stop::Interrupted(interruption)),
        }
    }

    /// The process of a command in `container`.
    pub(super) fn process(
        &self,
        container: &ContainerConfig,
        argv: Vec<String>,
    ) -> Result<Process, String> {
        self.process_in(&self.env_of(&container.env), container, argv)
    }

    /// The process of a command: its env (see [`env`]), and its arguments,
    /// working directory and limits with their templates rendered in that
    /// env.
    pub(super) fn process_in(
        &self,
        env: &StepEnv<'_>,
        container: &ContainerConfig,
        argv: Vec<String>,
    ) -> Result<Process, String> {
        let process_env = env.process_env(self.workspace_env())?;
        let argv = argv
            .iter()
            .map(|arg| env.render(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let working_dir = match &container.working_dir {
            Some(dir) => self.paths.visible(&env.render(dir)?),
            None => self.paths.default_working_dir(),
        };
        let limits = Limits::of_container(container, |text| env.render(text))?;
        Ok(Process {
            argv,
            env: process_env,
            working_dir,
            limits,
        })
    }

    /// Reads and removes `/testkube/outputs/*`, reporting each value.
    pub(super) async fn collect_outputs(&mut self, step: &str) -> BTreeMap<String, String> {
        let mut outputs = BTreeMap::new();
        let mut notes = Vec::new();
        let dir = self.paths.outputs_host();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return outputs;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let key = entry.file_name().to_string_lossy().into_owned();
            match entry.metadata() {
                Ok(meta) if meta.is_file() && meta.len() <= MAX_OUTPUT_BYTES => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        let text = String::from_utf8_lossy(&bytes);
                        let value = text.strip_suffix('\n').unwrap_or(&text);
                        let value = value.strip_suffix('\r').unwrap_or(value);
                        outputs.insert(key, value.to_owned());
                    }
                }
                Ok(meta) if meta.is_file() => notes.push(format!(
                    "output `{key}` is larger than {MAX_OUTPUT_BYTES} bytes: ignored"
                )),
                _ => {}
            }
            let _ = std::fs::remove_file(&path);
        }
        for note in notes {
            self.notice(note).await;
        }
        for (key, value) in &outputs {
            let _ = self
                .events
                .send(WorkerEvent::Output {
                    step: step.to_owned(),
                    key: key.clone(),
                    value: value.clone(),
                })
                .await;
        }
        outputs
    }
}

/// `sh -e -c SCRIPT`: the format runs shell steps with `set -e`.
pub(super) fn shell_argv(script: &str) -> Vec<String> {
    vec![
        "/bin/sh".to_owned(),
        "-e".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
    ]
}
