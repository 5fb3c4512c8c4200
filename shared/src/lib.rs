//! stackhand's shared library: the CloudFormation custom-resource runtime ([`cfn`]), AWS configuration
//! ([`aws`]), the invocation deadline ([`lambda`]), logging ([`logging`]), secret redaction ([`redact`])
//! and CloudFormation-shaped property parsing ([`props`]). The `fuzzing` feature adds the fuzz targets' checks. Every function crate builds on it; none of
//! them repeats it.

pub mod aws;
pub mod cfn;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod lambda;
pub mod logging;
pub mod props;
pub mod redact;
