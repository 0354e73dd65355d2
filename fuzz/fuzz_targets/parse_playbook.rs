//! Any bytes given to the playbook and retry parsers come back as a value or
//! diagnostics, never a panic, hang or runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = baton_dsl::parse_playbook(text);
        let _ = baton_dsl::RetryPolicy::from_yaml(text);
    }
});
