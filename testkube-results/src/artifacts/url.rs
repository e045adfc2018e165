//! Which artifact store a URL names: `TESTKUBE_ARTIFACTS_URL` and friends.

use std::path::PathBuf;

use super::ArtifactStoreError;

/// The variable that chooses the artifact store of `testkube run` (and of an engine that
/// reads its settings from the environment).
pub const ARTIFACTS_URL_VARIABLE: &str = "TESTKUBE_ARTIFACTS_URL";

/// Where artifacts go, as a URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactsUrl {
    /// A local folder (a path, or `file:///path`).
    Folder(PathBuf),
    /// S3-compatible storage: `s3://BUCKET[/PREFIX]` (or `s3a://`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix inside it, without leading or trailing `/` (maybe empty).
        prefix: String,
    },
}

impl ArtifactsUrl {
    /// Reads `text`: `s3://bucket[/prefix]`, `file:///folder` or a folder path.
    ///
    /// # Errors
    /// For an empty value, another URL scheme, an `s3://` URL without a bucket, or one with
    /// a query or `..` in its prefix.
    pub fn parse(text: &str) -> Result<Self, ArtifactStoreError> {
        let bad = |reason: &str| ArtifactStoreError::BadUrl {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(rest) = trimmed
            .strip_prefix("s3://")
            .or_else(|| trimmed.strip_prefix("s3a://"))
        {
            if rest.contains(['?', '#']) {
                return Err(bad(
                    "options go in the AWS_* variables (AWS_ENDPOINT_URL, AWS_REGION, ...), \
                     not in the URL",
                ));
            }
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("it names no bucket"));
            }
            let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
            if parts.iter().any(|p| *p == "." || *p == "..") {
                return Err(bad("its prefix holds `.` or `..`"));
            }
            return Ok(ArtifactsUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: parts.join("/"),
            });
        }
        if let Some(path) = trimmed.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("a file:// URL needs an absolute path (file:///folder)"));
            }
            return Ok(ArtifactsUrl::Folder(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return Err(bad(&format!(
                "`{scheme}://` storage is not supported (only folders and s3://)"
            )));
        }
        Ok(ArtifactsUrl::Folder(PathBuf::from(trimmed)))
    }

    /// [`ARTIFACTS_URL_VARIABLE`] read, or `None` when it is unset or empty (the default
    /// folder then).
    ///
    /// # Errors
    /// When it is set to something [`ArtifactsUrl::parse`] refuses.
    pub fn from_env() -> Result<Option<Self>, ArtifactStoreError> {
        match std::env::var(ARTIFACTS_URL_VARIABLE) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Self::parse(&value).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ArtifactStoreError::BadUrl {
                value: "(not UTF-8)".to_owned(),
                reason: "it is not valid UTF-8".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(
            ArtifactsUrl::parse("s3://arts/team//a/").unwrap(),
            ArtifactsUrl::S3 {
                bucket: "arts".into(),
                prefix: "team/a".into()
            }
        );
        assert_eq!(
            ArtifactsUrl::parse("s3a://arts").unwrap(),
            ArtifactsUrl::S3 {
                bucket: "arts".into(),
                prefix: String::new()
            }
        );
    }

    #[test]
    fn folders_are_paths_or_file_urls() {
        assert_eq!(
            ArtifactsUrl::parse("file:///srv/a").unwrap(),
            ArtifactsUrl::Folder("/srv/a".into())
        );
        assert_eq!(
            ArtifactsUrl::parse("out/arts").unwrap(),
            ArtifactsUrl::Folder("out/arts".into())
        );
    }

    #[test]
    fn unusable_urls_say_why() {
        for (url, why) in [
            ("", "empty"),
            ("s3://", "no bucket"),
            ("s3:///x", "no bucket"),
            ("s3://b/../x", "`..`"),
            ("s3://b/x?region=eu", "AWS_"),
            ("gs://b/x", "`gs://`"),
            ("file://rel", "absolute"),
        ] {
            let err = ArtifactsUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(err.contains("TESTKUBE_ARTIFACTS_URL"), "{url}: {err}");
        }
    }
}
