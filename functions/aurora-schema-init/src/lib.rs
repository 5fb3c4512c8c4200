//! `aurora-schema-init`: `Custom::AuroraSchema` — versioned SQL from SSM Parameter Store applied to an
//! Aurora MySQL cluster. The binary (`main.rs`) only wires it to the Lambda runtime.

mod db;
pub mod error;
mod migrate;
pub mod policy;
mod props;
pub mod schema;
pub mod source;
mod split;
mod target;

pub use error::SchemaError;
