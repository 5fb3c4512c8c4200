//! Every input in fuzz/regressions/envelope/ (seeds, and any crash `make fuzz` found) through the same
//! checks the fuzz target runs: what once failed stays fixed, in `make test`, on stable Rust.

#[test]
fn every_envelope_regression_input_passes_the_fuzz_checks() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/envelope");
    let mut inputs = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/regressions/envelope") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| stackhand::fuzzing::envelope(&data)) {
            panic!("{}: {}", path.display(), stackhand::logging::panic_message(panic.as_ref()));
        }
        inputs += 1;
    }
    assert!(inputs >= 3, "the seeds are there");
}
