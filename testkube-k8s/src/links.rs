//! The signed URLs a worker's pod gets (see
//! [`testkube_core::engine::signed`]): one `PUT` per artifacts step, and
//! the `PUT`/`GET` URLs of the `transfer`/`fetch` archives it writes or
//! reads. Signed when the Job is created, so the pod never needs to ask.

use std::sync::Arc;

use testkube_core::engine::protocol::ObjectLinks;
use testkube_core::engine::{
    Access, DEFAULT_URL_TTL, SignedStorage, SignedStorageError, WorkerFiles, WorkerId, WorkerSpec,
};
use testkube_core::plan::{Operation, PlanParallel, PlanStep};

/// The URLs of the worker `spec` describes.
///
/// # Errors
/// The first URL that could not be signed.
pub(crate) async fn worker_links(
    storage: &dyn SignedStorage,
    spec: &WorkerSpec,
) -> Result<ObjectLinks, SignedStorageError> {
    let execution = spec.execution.id.as_str();
    let mut links = ObjectLinks::default();
    let mut found = Found::default();
    walk(&spec.root, &mut found);
    for step in found.artifacts {
        let url = storage
            .artifacts_upload_url(execution, &spec.worker, &step, DEFAULT_URL_TTL)
            .await?;
        links.artifacts.insert(step, url);
    }
    let mut put: Vec<String> = found
        .transfers
        .iter()
        .flat_map(|(step, count)| {
            (0..*count).map(|index| WorkerFiles::transfer_archive(&spec.worker, step, index))
        })
        .collect();
    put.extend(spec.files.pack.iter().map(|pack| pack.archive.clone()));
    for name in put {
        let url = storage
            .archive_url(execution, &name, Access::Write, DEFAULT_URL_TTL)
            .await?;
        links.put.insert(name, url);
    }
    for unpack in &spec.files.unpack {
        let url = storage
            .archive_url(execution, &unpack.archive, Access::Read, DEFAULT_URL_TTL)
            .await?;
        links.get.insert(unpack.archive.clone(), url);
    }
    Ok(links)
}

/// The URLs to read what `workers` of `block` left for `fetch`.
///
/// # Errors
/// The first URL that could not be signed.
pub(crate) async fn fetch_links(
    storage: &Arc<dyn SignedStorage>,
    execution: &str,
    block: &PlanParallel,
    workers: &[WorkerId],
) -> Result<ObjectLinks, SignedStorageError> {
    let mut links = ObjectLinks::default();
    for index in 0..block.fetch.len() {
        for worker in workers {
            let name = WorkerFiles::fetch_archive(worker, index);
            let url = storage
                .archive_url(execution, &name, Access::Read, DEFAULT_URL_TTL)
                .await?;
            links.get.insert(name, url);
        }
    }
    Ok(links)
}

/// What a worker's own steps (not its parallel workers') store or move.
#[derive(Default)]
struct Found {
    /// Steps with an `artifacts` operation.
    artifacts: Vec<String>,
    /// Steps holding a `parallel` block, with how many `transfer`s it has.
    transfers: Vec<(String, usize)>,
}

fn walk(step: &PlanStep, found: &mut Found) {
    for operation in &step.operations {
        match operation {
            Operation::Artifacts { .. } if !found.artifacts.contains(&step.id) => {
                found.artifacts.push(step.id.clone());
            }
            Operation::Parallel(block) if !block.transfer.is_empty() => {
                found
                    .transfers
                    .push((step.id.clone(), block.transfer.len()));
            }
            Operation::Setup { steps } | Operation::Steps { steps } => {
                for child in steps {
                    walk(child, found);
                }
            }
            _ => {}
        }
    }
}
