//! Data formats: `tojson`, `json`, `toyaml`, `yaml` and `jq`.
//!
//! `jq(value, "program")` runs a jq program with jaq and returns the list of
//! its outputs, as Testkube does with gojq (`jq([1,2,3], ". | max")` is
//! `[3]`). A program is trusted like the rest of the workflow: outputs are
//! capped at [`MAX_JQ_OUTPUTS`], but a program that loops without producing
//! output is not interrupted.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

use super::CallResult;
use crate::expr::error::ExprErrorKind;
use crate::expr::value::describe;
use crate::yaml::{LoadOptions, load_documents};

/// Most outputs one `jq()` call may produce.
const MAX_JQ_OUTPUTS: usize = 100_000;

pub(super) fn call(name: &str, args: &[Value]) -> CallResult {
    let arg = &args[0];
    let fail = |message: String| Err((ExprErrorKind::Function, message));
    let value = match name {
        "tojson" => Value::String(arg.to_string()),
        "toyaml" => match serde_saphyr::to_string(arg) {
            Ok(text) => Value::String(text),
            Err(e) => return fail(format!("cannot write YAML: {e}")),
        },
        "json" => {
            let Value::String(text) = arg else {
                return Err(not_a_string(arg));
            };
            match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => return fail(format!("invalid JSON: {e}")),
            }
        }
        "yaml" => {
            let Value::String(text) = arg else {
                return Err(not_a_string(arg));
            };
            match load_documents(text, &LoadOptions::default()) {
                Ok(docs) => docs.first().map_or(Value::Null, |d| d.to_json()),
                Err(d) => return fail(format!("invalid YAML: {d}")),
            }
        }
        _ => {
            let program = crate::expr::value::to_text(&args[1]);
            return jq(arg, &program)
                .map(Some)
                .map_err(|m| (ExprErrorKind::Function, m));
        }
    };
    Ok(Some(value))
}

fn not_a_string(value: &Value) -> (ExprErrorKind, String) {
    (
        ExprErrorKind::Type,
        format!("needs a string, got {}", describe(value)),
    )
}

/// Runs `program` on `input` and collects the outputs.
fn jq(input: &Value, program: &str) -> Result<Value, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errs| {
            format!(
                "invalid jq program {}: {} error(s)",
                Value::String(program.into()),
                errs.len()
            )
        })?;
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            format!(
                "invalid jq program {}: {} error(s)",
                Value::String(program.into()),
                errs.len()
            )
        })?;
    let input = jaq_json::read::parse_single(input.to_string().as_bytes())
        .map_err(|e| format!("cannot read the input: {e}"))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for output in filter.id.run((ctx, input)).map(unwrap_valr) {
        if outputs.len() >= MAX_JQ_OUTPUTS {
            return Err(format!(
                "the program gives more than {MAX_JQ_OUTPUTS} outputs"
            ));
        }
        let output = output.map_err(|e| format!("jq error: {e}"))?;
        let text = output.to_string();
        outputs.push(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    Ok(Value::Array(outputs))
}
