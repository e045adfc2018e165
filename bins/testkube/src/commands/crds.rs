//! `testkube crds`: the CustomResourceDefinitions of every kind, as
//! multi-document YAML (a contract: install with `kubectl apply
//! --server-side -f -`).

use std::process::ExitCode;

use super::CliError;

pub(crate) fn run() -> Result<ExitCode, CliError> {
    let mut text = String::new();
    for crd in testkube_k8s::crds() {
        let document = serde_saphyr::to_string(&crd)
            .map_err(|err| CliError::input(format!("cannot encode YAML: {err}")))?;
        text.push_str("---\n");
        text.push_str(&document);
    }
    crate::style::out(&text);
    Ok(ExitCode::SUCCESS)
}
