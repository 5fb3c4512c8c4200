//! Any bytes as a Schedule tag, a ScheduleOverride or schedule definitions (instance-scheduler's pure
//! schedule module, included by path: the function crate is a binary).
#![no_main]

#[allow(dead_code)]
#[path = "../../functions/instance-scheduler/src/schedule.rs"]
mod schedule;

libfuzzer_sys::fuzz_target!(|data: &[u8]| schedule::fuzz_check(data));
