//! Runs the server's workflows on their schedules (`spec.events[].cronjob`),
//! through the same path as `POST .../executions`.
//!
//! The tick run last of every schedule is kept in a small JSON file, so that
//! a server that was down runs a missed schedule once (its latest tick, see
//! [`Schedule::due`]), not once per missed tick, and a schedule seen for the
//! first time starts with its next tick. A schedule is known by its
//! workflow, its position and its line: an edited line is a new schedule.
//! Workflows are read again at every tick, so added, changed and deleted
//! schedules take effect by the next minute.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use testkube_core::schedule::Schedule;
use testkube_core::service::Clock;

use crate::api::RunBody;
use crate::definitions::Kind;
use crate::routes::AppRef;

/// The longest wait between two looks at the workflows.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// The tick run last, by schedule.
type Ticks = BTreeMap<String, DateTime<Utc>>;

/// Runs schedules until the task is dropped.
pub(crate) async fn run(state: AppRef, file: PathBuf, clock: Arc<dyn Clock>) {
    let mut ticks = load(&file).await;
    // A broken schedule is reported once, not every minute.
    let mut reported = std::collections::BTreeSet::new();
    loop {
        let now: DateTime<Utc> = clock.now().into();
        let mut wake = now + LOOK_AGAIN;
        let mut seen = Ticks::new();
        let workflows = match state.definitions.list(Kind::Workflow).await {
            Ok(workflows) => workflows,
            Err(err) => {
                // The ticks stay as they are: a schedule missed meanwhile
                // runs (once) when the workflows can be read again.
                tracing::warn!("schedules: cannot list workflows: {err}");
                tokio::time::sleep(LOOK_AGAIN).await;
                continue;
            }
        };
        for workflow in workflows {
            let name = workflow.metadata.name.clone().unwrap_or_default();
            for (index, event) in workflow.spec.events.iter().enumerate() {
                let Some(cron) = &event.cronjob else { continue };
                let key = format!(
                    "{name}/{index}/{}/{}",
                    cron.cron,
                    cron.timezone.as_deref().unwrap_or("")
                );
                let schedule = match Schedule::parse(&cron.cron, cron.timezone.as_deref()) {
                    Ok(schedule) => schedule,
                    Err(err) => {
                        if reported.insert(key.clone()) {
                            tracing::warn!(workflow = %name, "schedule left out: {err}");
                        }
                        continue;
                    }
                };
                let mut last = ticks.get(&key).copied().unwrap_or(now);
                if let Some(tick) = schedule.due(last, now) {
                    // Kept before the run starts: a crash right after never
                    // starts the same tick twice.
                    ticks.insert(key.clone(), tick);
                    save(&file, &ticks).await;
                    let body = RunBody {
                        config: cron
                            .config
                            .iter()
                            .map(|(key, value)| (key.clone(), value.clone()))
                            .collect(),
                        tags: cron
                            .labels
                            .iter()
                            .map(|(key, value)| (key.clone(), value.clone()))
                            .collect(),
                        running_context: Some(json!({
                            "interface": {"type": "cron"},
                            "actor": {"name": cron.cron, "type": "cron"},
                        })),
                        ..RunBody::default()
                    };
                    match crate::routes::start_workflow(&state, &name, body).await {
                        Ok(execution) => tracing::info!(
                            workflow = %name,
                            execution = %execution.name,
                            "started by its schedule `{}` (tick {tick})",
                            cron.cron
                        ),
                        Err(err) => tracing::warn!(
                            workflow = %name,
                            "its schedule `{}` could not start it: {err:?}",
                            cron.cron
                        ),
                    }
                    // A tick that could not start is not tried again: the
                    // next one will be.
                    last = tick;
                }
                if let Some(next) = schedule.next_after(now, last) {
                    wake = wake.min(next);
                }
                seen.insert(key, last);
            }
        }
        if seen != ticks {
            ticks = seen;
            save(&file, &ticks).await;
        }
        let wait = (wake - now).to_std().unwrap_or_default();
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

async fn load(file: &PathBuf) -> Ticks {
    match tokio::fs::read(file).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
            tracing::warn!(
                "schedules: {} is not readable ({err}); every schedule starts with its next tick",
                file.display()
            );
            Ticks::new()
        }),
        Err(_) => Ticks::new(),
    }
}

async fn save(file: &PathBuf, ticks: &Ticks) {
    let Ok(text) = serde_json::to_vec_pretty(ticks) else {
        return;
    };
    if let Some(folder) = file.parent() {
        let _ = tokio::fs::create_dir_all(folder).await;
    }
    // Written aside, then renamed: a crash never leaves half a file.
    let partial = file.with_extension("json.partial");
    let written = async {
        tokio::fs::write(&partial, text).await?;
        tokio::fs::rename(&partial, file).await
    };
    if let Err(err) = written.await {
        tracing::warn!("schedules: cannot write {}: {err}", file.display());
    }
}
