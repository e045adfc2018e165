//! Fuzzes the expression parser, printer and evaluator.
//!
//! For any UTF-8 input: parsing never panics; what parses prints back to
//! source that parses to the same expression; evaluating with an empty
//! context never panics and its (partial) result round-trips too. The same
//! holds for the input read as a template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testkube_core::expr::{EmptyContext, Expr, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = Expr::parse(source) {
        round_trip(&expr);
        if let Ok(value) = expr.evaluate(&EmptyContext) {
            round_trip(&value);
        }
        let _ = expr.variables();
    }
    if let Ok(template) = Template::parse(source) {
        let printed = template.to_string();
        let again = Template::parse(&printed).expect("printed template parses");
        assert_eq!(again, template, "template {printed:?}");
        if let Ok(value) = template.evaluate(&EmptyContext) {
            let printed = value.to_string();
            assert_eq!(
                Template::parse(&printed).expect("reparses"),
                value,
                "{printed:?}"
            );
        }
    }
});

fn round_trip(expr: &Expr) {
    let printed = expr.to_string();
    let again =
        Expr::parse(&printed).unwrap_or_else(|e| panic!("printed {printed:?} does not parse: {e}"));
    assert_eq!(&again, expr, "printed {printed:?}");
    assert_eq!(again.to_string(), printed);
}
