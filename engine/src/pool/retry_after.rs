//! "Come back later" from an API: an HTTP 429 or 503 with `Retry-After`. A handler fails with
//! a [`RetryAfter`] error; the scheduler retries after that delay (when the task's retry policy
//! allows another attempt, and never later than its `max_backoff`) and holds the bucket of the
//! task's pool for as long, so the pool's other tasks slow down too.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured: a day (a larger value is taken as a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// A task failed because the service asked to be called again after `delay`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (retry after {})", humantime::format_duration(*delay))]
pub struct RetryAfter {
    /// How long to wait before the next call.
    pub delay: Duration,
    /// What happened.
    pub message: String,
}

impl RetryAfter {
    /// `text` without the ` (retry after …)` this error's message ends with, if it does (an
    /// error that travelled as text, from a fleet worker, is rebuilt from it).
    pub fn strip_suffix(text: &str) -> &str {
        match text.rfind(" (retry after ") {
            Some(i) if text.ends_with(')') => &text[..i],
            _ => text,
        }
    }
}

/// Read a `Retry-After` value: delay-seconds (`"120"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, counted from `now`; a date in the past means no
/// delay). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        // 2015-10-21T07:28:00Z is 10 s after `now`.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
