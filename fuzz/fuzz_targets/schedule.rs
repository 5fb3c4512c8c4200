//! Any bytes as a Schedule tag, a ScheduleOverride or schedule definitions (instance-scheduler's pure
//! schedule module).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| instance_scheduler::schedule::fuzz_check(data));
