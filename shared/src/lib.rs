//! stackhand's shared library: the CloudFormation custom-resource runtime ([`cfn`]), AWS configuration
//! ([`aws`]), the invocation deadline ([`lambda`]), logging ([`logging`]), secret redaction ([`redact`])
//! and CloudFormation-shaped property parsing ([`props`]). Every function crate builds on it; none of
//! them repeats it.

pub mod aws;
pub mod cfn;
#[doc(hidden)]
pub mod fuzzing;
pub mod lambda;
pub mod logging;
pub mod props;
pub mod redact;
