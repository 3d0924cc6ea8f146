//! The STS query API's front door: the first line of the input is the query
//! string, the rest the `application/x-www-form-urlencoded` body; parsed and checked
//! as the STS handler does (see `rolegate::fuzzing::sts_form`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    rolegate::fuzzing::sts_form(query, body);
});
