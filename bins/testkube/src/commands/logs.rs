//! `testkube logs ID`: the output an execution's steps printed, as the store kept it, and with
//! `-f` what a running execution prints next (read from the store every
//! [`POLL`], so it works from any terminal while `testkube run` runs elsewhere).
//!
//! Bytes are printed as written; when the selection spans several workers, each line is
//! prefixed with its worker's path (lines are reassembled per worker first, so chunks that end
//! mid-line never mix two workers' output on one line; a line longer than [`LINE_LIMIT`] is cut
//! into prefixed lines of that size).
//!
//! The log is read a page of [`PAGE`] chunks at a time and written out before the next page is
//! read: memory stays bounded (a few MiB) for a log of any size, with or without `-f`.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use testkube_core::store::{LogChunk, LogFilter, MAX_LOG_CHUNK, ResultStore, StepRecord};
use testkube_results::store::SqliteStore;

use super::CliError;
use super::get::{block_on, find, open_store, store_error};
use crate::cli::LogsArgs;
use crate::style::{self, paint};

/// How often `-f` reads the store.
const POLL: Duration = Duration::from_millis(300);

/// How many chunks one read of the store returns at most: with chunks of at most
/// [`MAX_LOG_CHUNK`] bytes, a page is at most 4 MiB, whatever the log's size.
const PAGE: u64 = 64;

/// The longest line start kept while waiting for its end when lines are prefixed: a longer line
/// is printed in pieces of this size, each on a prefixed line of its own (a step printing without
/// newlines must not grow this).
const LINE_LIMIT: usize = MAX_LOG_CHUNK;

/// How often `-f` checks whether the process running the execution died.
const RECOVER_EVERY: Duration = Duration::from_secs(3);

pub(crate) fn run(args: LogsArgs) -> Result<ExitCode, CliError> {
    block_on(print_logs(&args))?;
    Ok(ExitCode::SUCCESS)
}

async fn print_logs(args: &LogsArgs) -> Result<(), CliError> {
    let store = open_store().await?;
    let mut record = find(&store, &args.id).await?;
    let id = record.id.clone();
    let mut printer = Printer::default();
    let mut fetched = 0_u64;
    let mut last_recovery = Instant::now();
    loop {
        let finished = record.status.is_finished();
        let steps = store.steps(&id).await.map_err(store_error)?;
        // Until the execution ends, a step or worker asked for may simply not have started.
        let strict = finished || !args.follow;
        let Some(selection) = Selection::new(args, &record.name, &steps, strict)? else {
            if strict {
                break;
            }
            tokio::time::sleep(POLL).await;
            record = store.get_execution(&id).await.map_err(store_error)?;
            continue;
        };
        fetched += print_new(&store, &id, &selection, fetched, &mut printer).await?;
        if finished || !args.follow {
            break;
        }
        tokio::time::sleep(POLL).await;
        if last_recovery.elapsed() >= RECOVER_EVERY {
            // The process running it may have been killed: then it ends `aborted`.
            store.recover_abandoned().await.map_err(store_error)?;
            last_recovery = Instant::now();
        }
        record = store.get_execution(&id).await.map_err(store_error)?;
    }
    printer.finish();
    if args.follow && record.status.is_not_passed() {
        anstream::eprintln!(
            "{} execution {} ended {}",
            paint(style::DIM, "note:"),
            record.name,
            record.status.as_str()
        );
    }
    Ok(())
}

/// Prints the chunks appended since the first `fetched`, a page at a time (a long log is never
/// all in memory); returns how many were read.
async fn print_new(
    store: &SqliteStore,
    id: &str,
    selection: &Selection,
    fetched: u64,
    printer: &mut Printer,
) -> Result<u64, CliError> {
    let mut read = 0;
    loop {
        let chunks = store
            .logs(id, &selection.query(fetched + read))
            .await
            .map_err(store_error)?;
        for chunk in chunks.iter().filter(|c| selection.matches(c)) {
            printer.print(chunk, selection.prefixed);
        }
        printer.emit();
        let count = u64::try_from(chunks.len()).unwrap_or(u64::MAX);
        read += count;
        if count < PAGE {
            return Ok(read);
        }
    }
}

/// Which chunks to print.
#[derive(Debug)]
struct Selection {
    /// Step ids `--step` names (all steps when `None`).
    steps: Option<BTreeSet<String>>,
    /// The worker `--worker` names (all when `None`).
    worker: Option<String>,
    /// Whether lines carry their worker's path.
    prefixed: bool,
}

impl Selection {
    /// What `args` ask for among `steps`. `None` when something asked for is not known (yet):
    /// an error when `strict`.
    fn new(
        args: &LogsArgs,
        execution: &str,
        steps: &[StepRecord],
        strict: bool,
    ) -> Result<Option<Self>, CliError> {
        let workers: Vec<&str> = steps.iter().fold(Vec::new(), |mut list, step| {
            if !list.contains(&step.worker.as_str()) {
                list.push(step.worker.as_str());
            }
            list
        });
        let worker = match &args.worker {
            None => None,
            Some(wanted) => match resolve_worker(wanted, &workers)? {
                Some(worker) => Some(worker.to_owned()),
                None if strict => {
                    return Err(CliError::input(format!(
                        "execution {execution} has no worker `{wanted}`"
                    ))
                    .with_hint(format!(
                        "its workers: {}; pass a path or a worker's index in its parallel block",
                        workers.join(", ")
                    )));
                }
                None => return Ok(None),
            },
        };
        let in_worker = |step: &&StepRecord| worker.as_deref().is_none_or(|w| step.worker == w);
        let steps_wanted = match &args.step {
            None => None,
            Some(wanted) => {
                let mut ids: BTreeSet<String> = steps
                    .iter()
                    .filter(in_worker)
                    .filter(|s| s.step == *wanted || s.name.as_deref() == Some(wanted))
                    .map(|s| s.step.clone())
                    .collect();
                // A service instance logs as `<step>.services.<name>.<index>`.
                if ids.is_empty()
                    && let Some((owner, _)) = wanted.split_once(".services.")
                    && steps.iter().filter(in_worker).any(|s| s.step == owner)
                {
                    ids.insert(wanted.clone());
                }
                if ids.is_empty() {
                    if !strict {
                        return Ok(None);
                    }
                    let known: BTreeSet<String> = steps
                        .iter()
                        .filter(in_worker)
                        .filter(|s| s.step != "root")
                        .map(|s| match &s.name {
                            Some(name) => format!("{} ({name})", s.step),
                            None => s.step.clone(),
                        })
                        .collect();
                    let known: Vec<String> = known.into_iter().collect();
                    return Err(CliError::input(format!(
                        "execution {execution} has no step `{wanted}`"
                    ))
                    .with_hint(format!(
                        "pass a step id or name (a service's logs: STEP.services.NAME.INDEX); its steps: {}",
                        known.join(", ")
                    )));
                }
                Some(ids)
            }
        };
        let selected_workers: BTreeSet<&str> = steps
            .iter()
            .filter(in_worker)
            .filter(|s| {
                steps_wanted
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&s.step))
            })
            .map(|s| s.worker.as_str())
            .collect();
        Ok(Some(Selection {
            steps: steps_wanted,
            prefixed: worker.is_none() && selected_workers.len() > 1,
            worker,
        }))
    }

    /// The store query: narrowed where one step or worker is wanted; the page after `skip`.
    fn query(&self, skip: u64) -> LogFilter {
        let single_step = self
            .steps
            .as_ref()
            .filter(|ids| ids.len() == 1)
            .and_then(|ids| ids.first().cloned());
        LogFilter {
            step: single_step,
            worker: self.worker.clone(),
            skip,
            limit: Some(PAGE),
        }
    }

    fn matches(&self, chunk: &LogChunk) -> bool {
        self.worker.as_deref().is_none_or(|w| chunk.worker == w)
            && self
                .steps
                .as_ref()
                .is_none_or(|ids| ids.contains(&chunk.step))
    }
}

/// The worker `wanted` names among `workers`: a path (`root/tests/2`), or a worker's index in
/// its parallel block (`2`, when one block has it). Several matches are a usage error.
fn resolve_worker<'a>(wanted: &str, workers: &[&'a str]) -> Result<Option<&'a str>, CliError> {
    if let Some(exact) = workers.iter().find(|w| **w == wanted) {
        return Ok(Some(exact));
    }
    let suffix = format!("/{}", wanted.trim_start_matches('/'));
    let matching: Vec<&str> = workers
        .iter()
        .copied()
        .filter(|w| w.ends_with(&suffix))
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(CliError::usage(format!(
            "`--worker {wanted}` matches several workers: {}",
            many.join(", ")
        ))
        .with_hint("pass the worker's full path")),
    }
}

/// Writes chunks to stdout; with prefixes, whole lines per worker.
#[derive(Debug, Default)]
struct Printer {
    /// Per worker, the start of a line not yet ended.
    partial: HashMap<String, Vec<u8>>,
    /// What the next [`Printer::emit`] writes (one write per page read, not per chunk).
    out: Vec<u8>,
}

impl Printer {
    fn print(&mut self, chunk: &LogChunk, prefixed: bool) {
        if !prefixed {
            self.out.extend_from_slice(&chunk.data);
            return;
        }
        let partial = self.partial.entry(chunk.worker.clone()).or_default();
        partial.extend_from_slice(&chunk.data);
        let complete = match partial.iter().rposition(|b| *b == b'\n') {
            Some(end) => {
                let rest = partial.split_off(end + 1);
                std::mem::replace(partial, rest)
            }
            None if partial.len() > LINE_LIMIT => {
                let mut piece = std::mem::take(partial);
                piece.push(b'\n');
                piece
            }
            None => return,
        };
        push_lines(&mut self.out, &chunk.worker, &complete);
    }

    /// Ends the lines left open, and writes everything.
    fn finish(&mut self) {
        let mut open: Vec<(String, Vec<u8>)> = self.partial.drain().collect();
        open.sort();
        for (worker, mut text) in open {
            if !text.is_empty() {
                text.push(b'\n');
                push_lines(&mut self.out, &worker, &text);
            }
        }
        self.emit();
    }

    /// Writes the bytes as the steps wrote them (not necessarily UTF-8), with `outln!`'s
    /// handling of a closed pipe.
    fn emit(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let mut stdout = anstream::stdout();
        if let Err(err) = stdout.write_all(&self.out).and_then(|()| stdout.flush()) {
            style::stdout_failed(&err);
        }
        self.out.clear();
    }
}

fn push_lines(out: &mut Vec<u8>, worker: &str, text: &[u8]) {
    let prefix = paint(style::DIM, format!("{worker} | "));
    for line in text.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
    }
}
