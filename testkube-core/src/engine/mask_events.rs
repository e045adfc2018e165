//! Masking the engine's [`Event`]s on their way out, with one
//! [`LogMasker`] per step's log: kept apart from the masker itself, which
//! knows nothing of events.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::event::{Event, ExecutionSummary, StepRef};
use super::executor::{StepDetail, WorkerId};
use super::mask::{LogMasker, SecretMasker};
use crate::store::TestCaseRecord;

/// Masks the engine's events on their way out: one [`LogMasker`] per
/// step's log, released when the step changes status or its worker ends.
#[derive(Debug)]
pub(crate) struct EventMasker {
    masker: SecretMasker,
    /// Log streams by worker number and step id.
    streams: BTreeMap<(usize, String), (WorkerId, LogMasker)>,
}

impl EventMasker {
    pub(crate) fn new(masker: SecretMasker) -> Self {
        EventMasker {
            masker,
            streams: BTreeMap::new(),
        }
    }

    /// The events to publish for `event`: itself masked, preceded by the
    /// held log output it ends.
    pub(crate) fn mask(&mut self, event: Event) -> Vec<Event> {
        if self.masker.is_empty() {
            return vec![event];
        }
        let mut out = Vec::new();
        match event {
            Event::Log {
                worker,
                step,
                chunk,
            } => {
                let key = (worker.number, step);
                let (_, stream) = self
                    .streams
                    .entry(key.clone())
                    .or_insert_with(|| (worker.clone(), self.masker.stream()));
                let chunk = stream.push(chunk);
                if !chunk.is_empty() {
                    out.push(Event::Log {
                        worker,
                        step: key.1,
                        chunk,
                    });
                }
                return out;
            }
            Event::Step {
                ref worker,
                ref step,
                ..
            } => {
                let key = (worker.number, step.id.clone());
                if let Some((worker, mut stream)) = self.streams.remove(&key) {
                    push_log(&mut out, worker, key.1, stream.finish());
                }
            }
            Event::Worker { ref worker, .. } => {
                let number = worker.number;
                out.extend(self.release(|key| key.0 == number));
            }
            _ => {}
        }
        out.push(self.mask_fields(event));
        out
    }

    /// Every held log output: the execution is over.
    pub(crate) fn finish(&mut self) -> Vec<Event> {
        self.release(|_| true)
    }

    /// The summary with every secret masked.
    pub(crate) fn mask_summary(&self, mut summary: ExecutionSummary) -> ExecutionSummary {
        let masker = &self.masker;
        if masker.is_empty() {
            return summary;
        }
        summary.name = masker.mask_string(summary.name);
        summary.message = summary.message.map(|text| masker.mask_string(text));
        if let Some(init) = &mut summary.result.initialization {
            init.error_message = init.error_message.take().map(|t| masker.mask_string(t));
        }
        for case in &mut summary.tests.failures {
            mask_case(masker, case);
        }
        for worker in &mut summary.workers {
            worker.description = worker.description.take().map(|d| masker.mask_string(d));
            for step in &mut worker.steps {
                step.name = step.name.take().map(|name| masker.mask_string(name));
                step.message = step.message.take().map(|text| masker.mask_string(text));
                for value in step.outputs.values_mut() {
                    *value = masker.mask_string(std::mem::take(value));
                }
            }
        }
        summary
    }

    fn release(&mut self, which: impl Fn(&(usize, String)) -> bool) -> Vec<Event> {
        let keys: Vec<(usize, String)> =
            self.streams.keys().filter(|k| which(k)).cloned().collect();
        let mut out = Vec::new();
        for key in keys {
            if let Some((worker, mut stream)) = self.streams.remove(&key) {
                push_log(&mut out, worker, key.1, stream.finish());
            }
        }
        out
    }

    fn mask_fields(&self, event: Event) -> Event {
        let masker = &self.masker;
        let text = |value: String| masker.mask_string(value);
        match event {
            Event::Worker {
                worker,
                status,
                description,
            } => Event::Worker {
                worker,
                status,
                description: description.map(text),
            },
            Event::Step {
                worker,
                step,
                status,
                at,
                detail,
            } => Event::Step {
                worker,
                step: StepRef {
                    name: step.name.map(text),
                    ..step
                },
                status,
                at,
                detail: StepDetail {
                    message: detail.message.map(text),
                    ..detail
                },
            },
            Event::Output {
                worker,
                step,
                key,
                value,
            } => Event::Output {
                worker,
                step,
                key: text(key),
                value: text(value),
            },
            Event::Artifact {
                worker,
                step,
                path,
                location,
                size,
            } => Event::Artifact {
                worker,
                step,
                path: text(path),
                location: text(location),
                size,
            },
            Event::TestCases {
                worker,
                step,
                report,
                mut cases,
            } => {
                for case in &mut cases {
                    mask_case(masker, case);
                }
                Event::TestCases {
                    worker,
                    step,
                    report: text(report),
                    cases,
                }
            }
            Event::Child {
                worker,
                step,
                child,
                description,
            } => Event::Child {
                worker,
                step,
                child,
                description: description.map(text),
            },
            Event::Initialization {
                worker,
                status,
                at,
                message,
            } => Event::Initialization {
                worker,
                status,
                at,
                message: message.map(text),
            },
            Event::Notice { worker, message } => Event::Notice {
                worker,
                message: text(message),
            },
            Event::Finished(summary) => Event::Finished(Box::new(self.mask_summary(*summary))),
            other => other,
        }
    }
}

fn push_log(out: &mut Vec<Event>, worker: WorkerId, step: String, chunk: Bytes) {
    if !chunk.is_empty() {
        out.push(Event::Log {
            worker,
            step,
            chunk,
        });
    }
}

/// A test case's texts with secrets masked (a test may print a token in
/// its failure message).
fn mask_case(masker: &SecretMasker, case: &mut TestCaseRecord) {
    let mask = |text: &mut String| *text = masker.mask_string(std::mem::take(text));
    mask(&mut case.suite);
    mask(&mut case.name);
    for field in [&mut case.class, &mut case.file, &mut case.message] {
        if let Some(text) = field.as_mut() {
            mask(text);
        }
    }
}
