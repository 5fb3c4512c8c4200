//! Any bytes as a custom-resource event: envelope, properties and the response body (shared/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stackhand::fuzzing::envelope(data));
