//! Every input in fuzz/regressions/envelope/ (seeds, and any crash `make fuzz` found) through the same
//! checks the fuzz target runs: what once failed stays fixed, in `make test`, on stable Rust.

#[test]
fn every_envelope_regression_input_passes_the_fuzz_checks() {
    // From the package directory cargo test gives the running test, not the compiled-in one: clones
    // sharing a target directory reuse each other's test binaries (testkit::checkout_path, which this
    // crate cannot depend on, does the same for the functions).
    let package = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR: run the tests with cargo test");
    let dir = std::path::Path::new(&package).join("../fuzz/regressions/envelope");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/envelope") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| stackhand::fuzzing::envelope(&data)) {
            panic!("{}: {}", path.display(), stackhand::logging::panic_message(panic.as_ref()));
        }
        inputs += 1;
    }
    assert!(inputs >= 3, "the seeds are there");
}
