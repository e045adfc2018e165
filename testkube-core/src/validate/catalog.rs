//! Files validated together form one catalog of templates: a template
//! defined in one of them serves the workflows of all of them, next to the
//! caller's templates (the built-ins). Every `use`/`template` of every
//! workflow is then resolved against that catalog by the resolver itself
//! ([`resolve::check_templates`]), so `validate` finds what `render`, `plan`
//! and `run` would refuse about templates, with the same messages.

use super::LoadedFile;
use crate::model::Document;
use crate::resolve::{self, TemplateOrigin, TemplateSet};

/// Adds the template problems of every workflow of `files` to its file's
/// diagnostics. `templates` holds the templates known besides the files'
/// own (usually [`TemplateSet::with_builtins`]); a template defined in the
/// files replaces a known one of the same name, and of two files defining
/// one name the later wins, as with `--templates` folders.
///
/// Documents that could not be read (their errors are already reported)
/// are skipped, as templates and as workflows.
pub fn check_catalog(files: &mut [LoadedFile], mut templates: TemplateSet) {
    for file in files.iter() {
        templates.insert_documents(
            file.typed_documents(),
            &TemplateOrigin::File(file.name.clone()),
        );
    }
    for file in files.iter_mut() {
        let mut found = Vec::new();
        for document in &file.documents {
            if let Some(Document::TestWorkflow(workflow)) = &document.document {
                found.extend(resolve::check_templates(
                    workflow,
                    &templates,
                    Some(&document.node),
                ));
            }
        }
        if found.is_empty() {
            continue;
        }
        let name = file.name.clone();
        file.diagnostics
            .extend(found.into_iter().map(|d| d.with_file(&name)));
        // File order again; stable, so problems at one place keep theirs.
        file.diagnostics
            .sort_by_key(|d| d.span().map_or(usize::MAX, |span| span.offset));
    }
}
