//! `check`: each value parsed and resolved as the scheduler would; its normal form, or its error.

use std::io::Write;

use instance_scheduler::schedule::Definitions;

use crate::resolve::{self, SetupError};

pub fn run(values: &[String], definitions: Option<&Definitions>, out: &mut impl Write) -> Result<bool, SetupError> {
    let mut all = true;
    for value in values {
        match resolve::schedule(value, definitions) {
            Ok(schedule) => writeln!(out, "ok: {}: {schedule}", value.trim())?,
            Err(e) => {
                all = false;
                super::unusable(value, &e, out)?;
            }
        }
    }
    Ok(all)
}
