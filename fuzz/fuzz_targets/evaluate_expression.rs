//! Any expression text is parsed and, when it parses, evaluated over a retry
//! context, without a panic or a hang (evaluation is fuel-bounded).
#![no_main]

use baton_dsl::{Expression, Outcome, retry_context};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(expression) = Expression::parse(text)
    {
        let ctx = retry_context(&Outcome::failure("boom"), 2);
        let _ = expression.is_true(&ctx);
    }
});
