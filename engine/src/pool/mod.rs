//! Pools and rate limits: bound how many tasks use a resource at once (a pool of slots) and how
//! often tasks start (token buckets per task, per pool and per queue). A task that must wait
//! for either is *waiting*: not started, not timed, recorded by checkpoints as not yet run.
//!
//! [`PoolDef`] and [`QueueDef`] are the definitions (in the workflow file and the Rust API);
//! [`Limiter`] holds a run's slots and buckets; [`Admission`] is what a task holds while it
//! runs, giving its slots back when dropped, however the task ends.

mod bucket;
mod limiter;
mod rate;
mod retry_after;

pub use bucket::TokenBucket;
pub use limiter::{Admission, Limiter, PoolStatus, Wait, WaitReason};
pub use rate::{
    MAX_BURST, MAX_INTERVAL, MAX_RATE_COUNT, RATE_HINT, RateError, RateLimit, RatePeriod,
};
pub use retry_after::{MAX_RETRY_AFTER, RetryAfter, parse_retry_after};

/// The most slots a pool may have.
pub const MAX_POOL_SLOTS: u32 = 1_000_000;

/// A pool: `slots` tasks (or fewer, for tasks taking several slots) use it at once, and with a
/// rate limit, at most that many start per period.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolDef {
    /// How many slots it has.
    pub slots: u32,
    /// How often tasks of the pool may start, all together.
    pub rate_limit: Option<RateLimit>,
}

impl PoolDef {
    /// A pool of `slots` slots, without a rate limit.
    pub fn new(slots: u32) -> Self {
        PoolDef {
            slots,
            rate_limit: None,
        }
    }

    /// Limit how often its tasks start.
    pub fn rate_limit(mut self, rate: RateLimit) -> Self {
        self.rate_limit = Some(rate);
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.slots == 0 || self.slots > MAX_POOL_SLOTS {
            return Err(format!(
                "a pool needs 1 to {MAX_POOL_SLOTS} slots, not {}",
                self.slots
            ));
        }
        Ok(())
    }
}

/// A worker queue's limits: tasks routed to the queue start at most this often, all together.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueDef {
    /// How often tasks of the queue may start.
    pub rate_limit: Option<RateLimit>,
}

impl QueueDef {
    /// A queue limited to `rate`.
    pub fn rate_limited(rate: RateLimit) -> Self {
        QueueDef {
            rate_limit: Some(rate),
        }
    }
}
