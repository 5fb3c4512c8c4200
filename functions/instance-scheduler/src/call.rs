//! A call bounded by the run's cutoff.

use tokio::time::Instant;

/// `work`, or (when it is not done by `cutoff`) an error saying `operation` had no answer in time.
pub async fn by_cutoff<T, E: std::fmt::Display>(
    cutoff: Instant,
    operation: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout_at(cutoff, work).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err(format!("{operation} had no complete answer by the run's cutoff; the next run tries again")),
    }
}
