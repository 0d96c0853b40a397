//! A token bucket on tokio time, kept as the earliest time the next start is allowed (GCRA):
//! taking a token is one lock and one clock read, and waits are exact under
//! `tokio::time::pause`. A token is reserved when asked for (first come, first served) and the
//! caller sleeps until its turn. An API that answers "slow down" holds the bucket: no token is
//! handed out before the hold ends.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::rate::RateLimit;

/// A token bucket, with or without a steady rate (without one it only honours holds).
#[derive(Debug)]
pub struct TokenBucket {
    rate: Option<RateLimit>,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    /// When the next token would be handed out at the steady rate ("theoretical arrival").
    next: Option<Instant>,
    /// No token before this.
    hold_until: Option<Instant>,
}

impl TokenBucket {
    /// A bucket that hands out tokens at `rate` (none: every token at once, unless held).
    pub fn new(rate: Option<RateLimit>) -> Self {
        TokenBucket {
            rate,
            state: Mutex::new(BucketState {
                next: None,
                hold_until: None,
            }),
        }
    }

    /// The steady rate, if any.
    pub fn rate(&self) -> Option<RateLimit> {
        self.rate
    }

    /// Reserve the next token: how long to wait before using it (zero: use it now).
    pub fn reserve(&self) -> Duration {
        self.reserve_at(Instant::now())
    }

    /// [`reserve`](Self::reserve) at a given time.
    pub fn reserve_at(&self, now: Instant) -> Duration {
        let mut st = self.state.lock();
        let mut start = now;
        if let Some(hold) = st.hold_until {
            if hold > start {
                start = hold;
            } else {
                st.hold_until = None;
            }
        }
        if let Some(rate) = self.rate {
            let interval = rate.interval();
            // Up to `burst` tokens may be taken ahead of the steady schedule.
            let slack = interval.saturating_mul(rate.burst - 1);
            let next = st.next.unwrap_or(start);
            let allowed = next.checked_sub(slack).unwrap_or(start);
            if allowed > start {
                start = allowed;
            }
            // Intervals are at most 30 days: the schedule stays far inside what an instant
            // can hold; were it ever to overflow, the token is handed out at the start found.
            st.next = Some(
                next.max(start)
                    .checked_add(interval)
                    .unwrap_or_else(|| next.max(start)),
            );
        }
        start.saturating_duration_since(now)
    }

    /// Take a token, sleeping until it may be used.
    pub async fn take(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Hand out no token for `delay` from now (an API asked to be left alone that long); a
    /// longer hold already in place stays.
    pub fn hold_for(&self, delay: Duration) {
        let now = Instant::now();
        let until = now
            .checked_add(delay.min(crate::pool::MAX_RETRY_AFTER))
            .unwrap_or(now);
        let mut st = self.state.lock();
        if st.hold_until.is_none_or(|h| h < until) {
            st.hold_until = Some(until);
        }
    }

    /// When a hold ends, if one is in place.
    pub fn held_until(&self) -> Option<Instant> {
        let st = self.state.lock();
        st.hold_until.filter(|h| *h > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_tokens_at_the_rate_after_the_burst() {
        let b = TokenBucket::new(Some("10/s burst 3".parse().expect("rate")));
        let now = Instant::now();
        let waits: Vec<Duration> = (0..5).map(|_| b.reserve_at(now)).collect();
        assert_eq!(
            waits,
            [0, 0, 0, 100, 200].map(Duration::from_millis).to_vec()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_the_next_token() {
        let b = TokenBucket::new(None);
        assert_eq!(b.reserve(), Duration::ZERO);
        b.hold_for(Duration::from_secs(1));
        assert_eq!(b.reserve(), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.reserve(), Duration::ZERO);
    }
}
