//! Every input in fuzz/regressions/schedule/ (seeds, and any crash `make fuzz` found) through the same
//! checks the fuzz target runs (`schedule::fuzz_check`, the `fuzzing` feature): what once failed stays
//! fixed, in `make test`, on stable Rust.

use instance_scheduler::schedule::fuzz_check;

#[test]
fn every_fuzz_regression_input_passes_the_fuzz_checks() {
    let dir = testkit::checkout_path("fuzz/regressions/schedule");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/schedule") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| fuzz_check(&data)).is_err() {
            panic!("{} fails the fuzz checks", path.display());
        }
        inputs += 1;
    }
    assert!(inputs >= 3, "the seeds are there");
}
