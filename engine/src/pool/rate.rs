//! Rate limits as written in a workflow file: `"10/s"`, `"600/m"`, `"2.5/h"`, with an optional
//! burst: `"10/s burst 5"`. A rate of `n` per period lets one task start every `period / n`;
//! the burst is how many may start at once after a quiet spell (1 by default: evenly spaced).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// A rate limit that does not parse or means nothing.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RateError {
    /// The text does not have the shape of a rate limit; the message says which part.
    #[error("{0}")]
    Syntax(String),
    /// The count is zero, negative or not a number.
    #[error("the count must be a number above 0, got {0}")]
    CountNotPositive(f64),
    /// The count is above [`MAX_RATE_COUNT`].
    #[error("the count may be at most {MAX_RATE_COUNT}, got {0}")]
    CountTooLarge(f64),
    /// The burst is 0 or above [`MAX_BURST`].
    #[error("the burst must be 1 to {MAX_BURST}, got {0}")]
    Burst(u32),
    /// The rate means more than [`MAX_INTERVAL`] between two starts.
    #[error(
        "{rate} is slower than one start every {}",
        humantime::format_duration(MAX_INTERVAL)
    )]
    TooSlow {
        /// The rate, as written back.
        rate: String,
    },
    /// The rate means less than a nanosecond between two starts.
    #[error("{rate} is faster than one start per nanosecond")]
    TooFast {
        /// The rate, as written back.
        rate: String,
    },
    /// One of the errors above, in this text.
    #[error("'{text}': {source}")]
    In {
        /// The text as written.
        text: String,
        /// What is wrong with it.
        source: Box<RateError>,
    },
}

impl From<RateError> for String {
    fn from(e: RateError) -> String {
        e.to_string()
    }
}

/// The largest count a rate may name per period (beyond it, the interval is below a nanosecond
/// per second and the limit means nothing).
pub const MAX_RATE_COUNT: f64 = 1_000_000_000.0;
/// The longest time between two starts a rate may mean (30 days).
pub const MAX_INTERVAL: Duration = Duration::from_secs(30 * 86_400);
/// The largest burst.
pub const MAX_BURST: u32 = 1_000_000;

/// A rate limit: `count` starts per `period`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Starts allowed per period (more than 0).
    pub count: f64,
    /// The period: one second, minute or hour.
    pub period: RatePeriod,
    /// Starts allowed at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// The period of a [`RateLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePeriod {
    /// Per second (`/s`).
    Second,
    /// Per minute (`/m`).
    Minute,
    /// Per hour (`/h`).
    Hour,
}

impl RatePeriod {
    /// The period's length.
    pub fn duration(self) -> Duration {
        match self {
            RatePeriod::Second => Duration::from_secs(1),
            RatePeriod::Minute => Duration::from_secs(60),
            RatePeriod::Hour => Duration::from_secs(3600),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            RatePeriod::Second => "s",
            RatePeriod::Minute => "m",
            RatePeriod::Hour => "h",
        }
    }
}

impl RateLimit {
    /// `count` starts per second, burst 1.
    pub fn per_second(count: f64) -> Result<Self, RateError> {
        Self::new(count, RatePeriod::Second, 1)
    }

    /// A checked rate limit.
    pub fn new(count: f64, period: RatePeriod, burst: u32) -> Result<Self, RateError> {
        if !(count.is_finite() && count > 0.0) {
            return Err(RateError::CountNotPositive(count));
        }
        if count > MAX_RATE_COUNT {
            return Err(RateError::CountTooLarge(count));
        }
        if burst == 0 || burst > MAX_BURST {
            return Err(RateError::Burst(burst));
        }
        let rate = RateLimit {
            count,
            period,
            burst,
        };
        match Duration::try_from_secs_f64(period.duration().as_secs_f64() / count) {
            Ok(interval) if interval <= MAX_INTERVAL => {}
            _ => {
                return Err(RateError::TooSlow {
                    rate: rate.to_string(),
                });
            }
        }
        if rate.interval().is_zero() {
            return Err(RateError::TooFast {
                rate: rate.to_string(),
            });
        }
        Ok(rate)
    }

    /// The same rate with this burst.
    pub fn with_burst(self, burst: u32) -> Result<Self, RateError> {
        Self::new(self.count, self.period, burst)
    }

    /// The time between two starts at the steady rate.
    pub fn interval(&self) -> Duration {
        Duration::try_from_secs_f64(self.period.duration().as_secs_f64() / self.count)
            .unwrap_or(Duration::MAX)
    }

    /// Starts per second.
    pub fn per_sec(&self) -> f64 {
        self.count / self.period.duration().as_secs_f64()
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.period.suffix())?;
        if self.burst != 1 {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// What a rate limit should look like, for error messages.
pub const RATE_HINT: &str = "write a count per period, like \"10/s\", \"600/m\" or \"100/h\", optionally with a burst: \"10/s burst 5\"";

impl FromStr for RateLimit {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, RateError> {
        let syntax = |message: String| Err(RateError::Syntax(message));
        let mut words = text.split_whitespace();
        let Some(rate) = words.next() else {
            return syntax("a rate limit is empty".into());
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => 1,
            (Some("burst"), Some(n), None) => n.parse::<u32>().map_err(|_| {
                RateError::Syntax(format!("'{text}': the burst '{n}' is not a whole number"))
            })?,
            _ => {
                return syntax(format!(
                    "'{text}' is not a rate limit: only \"burst <n>\" may follow the rate"
                ));
            }
        };
        let Some((count, period)) = rate.split_once('/') else {
            return syntax(format!("'{text}' is not a rate limit: it has no '/'"));
        };
        let period = match period {
            "s" | "sec" | "second" => RatePeriod::Second,
            "m" | "min" | "minute" => RatePeriod::Minute,
            "h" | "hour" => RatePeriod::Hour,
            other => {
                return syntax(format!("'{text}': the period '{other}' is not s, m or h"));
            }
        };
        if count.is_empty() || !count.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return syntax(format!("'{text}': the count '{count}' is not a number"));
        }
        let count: f64 = count.parse().map_err(|_| {
            RateError::Syntax(format!("'{text}': the count '{count}' is not a number"))
        })?;
        RateLimit::new(count, period, burst).map_err(|e| RateError::In {
            text: text.into(),
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_and_bursts() {
        let r: RateLimit = "10/s".parse().expect("parses");
        assert_eq!(r.interval(), Duration::from_millis(100));
        assert_eq!(r.burst, 1);
        let r: RateLimit = " 600/m  burst 5 ".parse().expect("parses");
        assert_eq!(r.interval(), Duration::from_millis(100));
        assert_eq!(r.burst, 5);
        assert_eq!(r.to_string(), "600/m burst 5");
        let r: RateLimit = "2.5/h".parse().expect("parses");
        assert_eq!(r.interval(), Duration::from_secs(1440));
    }

    #[test]
    fn refuses_malformed_rates() {
        for bad in [
            "",
            "10",
            "10/",
            "/s",
            "0/s",
            "-1/s",
            "1e3/s",
            "10/d",
            "10/s burst",
            "10/s burst 0",
            "10/s burst x",
            "10/s 5",
            "nan/s",
            "1..2/s",
            "10/s burst 5 more",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?} was accepted");
        }
    }
}
