//! Fuzzes the file loader and validator the CLI's `validate` uses.
//!
//! For any bytes: `load_file` never panics and ends in time (the run's
//! `-timeout` turns a slow input into a finding); every diagnostic names the
//! file, its span (when it has one) lies inside the decoded text, and
//! rendering it with the snippet never panics. Every document that was read
//! survives a JSON round trip unchanged, as the model promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testkube_core::model::Document;
use testkube_core::validate::load_file;
use testkube_core::yaml::LoadOptions;

fuzz_target!(|data: &[u8]| {
    let file = load_file("fuzz.yaml", data, &LoadOptions::default());
    for diagnostic in &file.diagnostics {
        assert_eq!(diagnostic.file(), Some("fuzz.yaml"), "{diagnostic}");
        if let (Some(span), Some(source)) = (diagnostic.span(), file.source.as_deref()) {
            assert!(
                span.offset + span.len <= source.len(),
                "span {span:?} past the end of {} bytes: {diagnostic}",
                source.len()
            );
        }
        let rendered = diagnostic.render(file.source.as_deref());
        assert!(!rendered.is_empty());
    }
    for document in file.typed_documents() {
        let json = serde_json::to_string(document).expect("a read document serializes");
        let back: Document = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("serialized document does not read back: {e}\n{json}"));
        assert_eq!(&back, document, "{json}");
    }
});
