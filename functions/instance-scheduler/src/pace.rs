//! Client-side pacing of StartInstances and StopInstances, per account and Region, with the token
//! buckets EC2 meters them by (Amazon EC2 API throttling): a request bucket of 5 calls refilled at 2 a
//! second, and a resource bucket of 1,000 instances refilled at 2 a second for starts and 20 a second
//! for stops. Without it, 8 concurrent batches of 100 drain the start bucket at once: past about 1,000
//! instances a run is throttled until its timeout and reports the rest as failed.
//!
//! A call waits until both buckets hold what it needs. A call that could not begin before the run's
//! cutoff is not sent: its instances are *deferred* (the next run starts them: they carry no marker).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::direction::Direction;

/// A token bucket: `capacity` tokens, refilled at `per_second`. Tokens may go below zero: a caller
/// that reserved them waits for the refill, and so does every caller after it.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64, now: Instant) -> Self {
        Self { capacity, per_second, tokens: capacity, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
    }

    /// How long until `n` tokens are there (zero if they are).
    fn wait_for(&self, n: f64) -> Duration {
        let missing = n - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.per_second)
        }
    }
}

/// EC2's documented bucket sizes and refill rates for StartInstances and StopInstances.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub requests: f64,
    pub requests_per_second: f64,
    pub instances: f64,
    pub start_instances_per_second: f64,
    pub stop_instances_per_second: f64,
}

impl Limits {
    pub const EC2: Limits = Limits {
        requests: 5.0,
        requests_per_second: 2.0,
        instances: 1000.0,
        start_instances_per_second: 2.0,
        stop_instances_per_second: 20.0,
    };
}

#[derive(Debug)]
struct Buckets {
    start_requests: Bucket,
    stop_requests: Bucket,
    start_instances: Bucket,
    stop_instances: Bucket,
}

/// The buckets of one account and Region (one per target's clients, so kept across the runs of a warm
/// Lambda container, as EC2's own are).
#[derive(Debug)]
pub struct Pacer {
    buckets: Mutex<Buckets>,
}

/// A call that could not begin before the cutoff: its instances wait for the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred;

impl Default for Pacer {
    fn default() -> Self {
        Self::new(Limits::EC2)
    }
}

impl Pacer {
    pub fn new(limits: Limits) -> Self {
        let now = Instant::now();
        Self {
            buckets: Mutex::new(Buckets {
                start_requests: Bucket::new(limits.requests, limits.requests_per_second, now),
                stop_requests: Bucket::new(limits.requests, limits.requests_per_second, now),
                start_instances: Bucket::new(limits.instances, limits.start_instances_per_second, now),
                stop_instances: Bucket::new(limits.instances, limits.stop_instances_per_second, now),
            }),
        }
    }

    /// Waits until a call on `instances` instances in `direction` fits both buckets, and takes its
    /// tokens; or, if it could not begin before `cutoff`, takes nothing and says so.
    pub async fn admit(&self, direction: Direction, instances: usize, cutoff: Instant) -> Result<(), Deferred> {
        let wait = {
            let now = Instant::now();
            let mut buckets = self.buckets.lock().unwrap();
            let Buckets { start_requests, stop_requests, start_instances, stop_instances } = &mut *buckets;
            let (requests, resources) = match direction {
                Direction::Start => (start_requests, start_instances),
                Direction::Stop => (stop_requests, stop_instances),
            };
            requests.refill(now);
            resources.refill(now);
            // More instances than the bucket holds can never fit: take what is there (EC2 then
            // throttles the rest, which the SDK retries).
            let n = (instances as f64).min(resources.capacity);
            let wait = requests.wait_for(1.0).max(resources.wait_for(n));
            if now + wait >= cutoff {
                return Err(Deferred);
            }
            requests.tokens -= 1.0;
            resources.tokens -= n;
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_wait_for_both_buckets_and_what_cannot_begin_by_the_cutoff_is_deferred() {
        let pacer = Pacer::default();
        let start = Instant::now();
        let cutoff = start + Duration::from_secs(300);
        // Ten batches of 100 empty the 1,000-instance bucket; the request bucket (5, 2/s) paces them.
        for _ in 0..10 {
            pacer.admit(Direction::Start, 100, cutoff).await.unwrap();
        }
        let after_ten = Instant::now() - start;
        assert!(after_ten >= Duration::from_millis(2500) && after_ten < Duration::from_secs(3), "{after_ten:?}");
        // The next 100 need 50 s of refill at 2 instances a second.
        pacer.admit(Direction::Start, 100, cutoff).await.unwrap();
        assert!(Instant::now() - start >= Duration::from_secs(50), "{:?}", Instant::now() - start);
        // Stops have buckets of their own, refilled at 20 instances a second.
        pacer.admit(Direction::Stop, 100, cutoff).await.unwrap();
        // At 2 a second, 300 s hold only a few more batches of 100; then the rest is deferred.
        let mut admitted = 0;
        while pacer.admit(Direction::Start, 100, cutoff).await.is_ok() {
            admitted += 1;
        }
        assert!(Instant::now() < cutoff, "nothing waits past the cutoff");
        assert_eq!(admitted, 4, "50 s each within the 300 s");
    }
}
