//! Migrations made ready to run: split into statements, with the checksums that tell on resume that
//! what already ran is unchanged.

use sha2::{Digest, Sha256};

use crate::source::{hex, normalise, Migration};
use crate::split::{split, Statement};
use crate::SchemaError;

/// A migration split into statements, with the checksum of each prefix (`prefixes[k]` covers the
/// first `k` statements) to recognise, on resume, that what already ran is unchanged.
pub struct Prepared {
    pub migration: Migration,
    pub checksum: String,
    pub statements: Vec<Statement>,
    pub(super) prefixes: Vec<String>,
}

/// Splits every migration before anything connects: a script that cannot be split applies nothing.
pub fn prepare(migrations: Vec<Migration>) -> Result<Vec<Prepared>, SchemaError> {
    migrations
        .into_iter()
        .map(|migration| {
            let statements = split(&normalise(&migration.sql))
                .map_err(|source| SchemaError::Split { migration: migration.id.clone(), source })?;
            let mut hasher = Sha256::new();
            let mut prefixes = vec![hex(&hasher.clone().finalize())];
            for s in &statements {
                hasher.update(s.text.as_bytes());
                hasher.update([0u8]);
                prefixes.push(hex(&hasher.clone().finalize()));
            }
            Ok(Prepared { checksum: migration.checksum(), migration, statements, prefixes })
        })
        .collect()
}
