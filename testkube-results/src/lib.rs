//! Test report parsing: JUnit XML in all its dialects into one normalized model.
#![warn(missing_docs)]
