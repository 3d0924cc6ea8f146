//! The admin API's mapping-rule documents (a `POST /mapping-rules/test` or
//! `PUT /mapping-rules` JSON body) → rules → compiled ruleset → evaluation (see
//! `rolegate::fuzzing::mapping_rules`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rolegate::fuzzing::mapping_rules(data);
});
