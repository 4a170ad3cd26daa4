#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubmock::fuzzing::callback(data));
