//! An execution's artifacts: the list, one file (streamed from wherever
//! the run kept it: a local folder or S3), and all of them as a `.tar.gz`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use testkube_core::store::{ArtifactRecord, ExecutionRecord};

use super::AppRef;
use crate::api::{Artifact, artifact_name};
use crate::error::{ApiError, ApiResult};

pub(crate) async fn list(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Artifact>>> {
    let (record, artifacts) = stored(&state, &id).await?;
    Ok(Json(
        artifacts
            .iter()
            .map(|artifact| Artifact::of(artifact, &record))
            .collect(),
    ))
}

pub(crate) async fn download(
    State(state): State<AppRef>,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (record, artifacts) = stored(&state, &id).await?;
    let Some(artifact) = artifacts
        .iter()
        .find(|artifact| artifact_name(artifact) == name)
    else {
        return Err(ApiError::not_found(format!(
            "execution {} has no artifact `{name}`; GET .../artifacts lists them",
            record.name
        )));
    };
    let stream = state
        .artifacts
        .lock()
        .await
        .open(&artifact.location)
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    let file_name = name.rsplit('/').next().unwrap_or(&name).replace('"', "");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, artifact.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other))),
    )
        .into_response())
}

/// Every artifact in one `.tar.gz`, each under its name. The archive is
/// built in a temporary folder first, so a file that cannot be read is an
/// error status, never a cut archive.
pub(crate) async fn archive(
    State(state): State<AppRef>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (record, artifacts) = stored(&state, &id).await?;
    let dir = tempfile::tempdir().map_err(|err| ApiError::internal(err.to_string()))?;
    let mut files = Vec::new();
    for (index, artifact) in artifacts.iter().enumerate() {
        let copy = dir.path().join(index.to_string());
        // The reader is shared (one S3 client per bucket): taken per file,
        // so that other downloads go on between them.
        let stream = state
            .artifacts
            .lock()
            .await
            .open(&artifact.location)
            .await
            .map_err(|err| ApiError::internal(err.to_string()))?;
        copy_to(stream, &copy).await?;
        files.push((artifact_name(artifact), copy));
    }
    let archive = dir.path().join("artifacts.tar.gz");
    let target = archive.clone();
    tokio::task::spawn_blocking(move || write_archive(&files, &target))
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?
        .map_err(|err| ApiError::internal(format!("cannot build the archive: {err}")))?;
    let file = tokio::fs::File::open(&archive)
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    // The folder lives as long as the body is being sent.
    let body = tokio_util::io::ReaderStream::new(file).map(move |chunk| {
        let _keep = &dir;
        chunk
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-artifacts.tar.gz\"", record.name),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Writes an artifact's bytes to `target`.
async fn copy_to(
    mut stream: testkube_results::artifacts::ArtifactStream,
    target: &std::path::Path,
) -> ApiResult<()> {
    use tokio::io::AsyncWriteExt;
    let failed =
        |err: std::io::Error| ApiError::internal(format!("cannot build the archive: {err}"));
    let mut file = tokio::fs::File::create(target).await.map_err(failed)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| ApiError::internal(err.to_string()))?;
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.flush().await.map_err(failed)
}

fn write_archive(
    files: &[(String, std::path::PathBuf)],
    target: &std::path::Path,
) -> std::io::Result<()> {
    let file = std::fs::File::create(target)?;
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (name, path) in files {
        builder.append_path_with_name(path, name)?;
    }
    builder.into_inner()?.finish()?.sync_all()
}

async fn stored(state: &AppRef, id: &str) -> ApiResult<(ExecutionRecord, Vec<ArtifactRecord>)> {
    let record = state
        .store
        .find_execution(id)
        .await
        .map_err(ApiError::store)?;
    let artifacts = state
        .store
        .artifacts(&record.id)
        .await
        .map_err(ApiError::store)?;
    Ok((record, artifacts))
}
