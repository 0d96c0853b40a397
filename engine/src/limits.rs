//! The bounds that keep hostile or buggy input from hanging or crashing the engine, in one
//! place. `docs/security.md` lists each with its default and what happens past it.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

/// A value or a setting is past one of these bounds. `what` names the setting or the value
/// (`timeout`, `the task's result`, …) so the message says where.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LimitError {
    /// A value nests deeper than [`MAX_VALUE_DEPTH`].
    #[error("{what} nests deeper than {MAX_VALUE_DEPTH} levels of arrays and objects")]
    TooDeep {
        /// The value.
        what: String,
    },
    /// A duration is longer than [`MAX_DURATION`].
    #[error("{what}: {shown} is longer than the limit of 366 days")]
    TooLong {
        /// The setting.
        what: String,
        /// The duration asked for, as written or formatted.
        shown: String,
    },
    /// A number of seconds is negative, infinite or not a number.
    #[error("{what} must be a positive number of seconds, got {secs}")]
    NotSeconds {
        /// The setting.
        what: String,
        /// The number given.
        secs: f64,
    },
    /// A text does not parse as a duration.
    #[error("{what}: '{text}' is not a duration ({reason})")]
    NotDuration {
        /// The setting.
        what: String,
        /// The text given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl From<LimitError> for String {
    fn from(e: LimitError) -> String {
        e.to_string()
    }
}

/// Deepest nesting of parentheses in a flow string.
pub const MAX_FLOW_DEPTH: usize = 128;

/// Deepest nesting of values (arrays and objects) the engine accepts from anywhere: RON files,
/// JSON files, sockets, REST bodies, checkpoints (those parsers stop at this depth) and values
/// a script builds at run time (checked when they leave the script).
pub const MAX_VALUE_DEPTH: usize = 128;

/// Longest duration any timeout, sleep or backoff may ask for (366 days).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Largest result file a `Shell`, `Command` or `Docker` task may leave (16 MiB).
pub const MAX_RESULT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Largest body an `Http` task reads from its answer (16 MiB).
pub const MAX_HTTP_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long a custom group policy may run (it runs on the scheduler's thread).
pub const POLICY_TIME_LIMIT: Duration = Duration::from_secs(1);

/// The nesting depth of `value` (a scalar is 0, `[]` is 1), counted without recursion.
pub fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    deepest
}

/// `Err` naming `what` when `value` nests deeper than [`MAX_VALUE_DEPTH`].
pub fn check_value_depth(value: &Value, what: &str) -> Result<(), LimitError> {
    if value_depth(value) > MAX_VALUE_DEPTH {
        return Err(LimitError::TooDeep { what: what.into() });
    }
    Ok(())
}

/// `Err` when `d` is longer than [`MAX_DURATION`]; `what` names the setting.
pub fn check_duration(d: Duration, what: &str) -> Result<Duration, LimitError> {
    if d > MAX_DURATION {
        return Err(LimitError::TooLong {
            what: what.into(),
            shown: humantime::format_duration(d).to_string(),
        });
    }
    Ok(d)
}

/// A number of seconds as a duration: finite, not negative, at most [`MAX_DURATION`].
pub fn seconds(secs: f64, what: &str) -> Result<Duration, LimitError> {
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(LimitError::NotSeconds {
            what: what.into(),
            secs,
        });
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(LimitError::TooLong {
            what: what.into(),
            shown: format!("{secs} s"),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse a duration such as `"30s"` and check it against [`MAX_DURATION`].
pub fn parse_duration(text: &str, what: &str) -> Result<Duration, LimitError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| LimitError::NotDuration {
        what: what.into(),
        text: text.into(),
        reason: e.to_string(),
    })?;
    check_duration(d, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert_eq!(value_depth(&json!(1)), 0);
        assert_eq!(value_depth(&json!([])), 1);
        assert_eq!(value_depth(&json!({"a": [1, {"b": []}]})), 4);
        let mut deep = json!(0);
        for _ in 0..10_000 {
            // `json!([deep])` would serialize `deep` again, recursively.
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(value_depth(&deep), 10_000);
        assert!(check_value_depth(&deep, "x").is_err());
        // Dropping it recursively would be deep too: take it apart iteratively.
        let mut v = deep;
        while let Value::Array(mut a) = v {
            v = a.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn durations_are_bounded() {
        assert!(
            seconds(1e20, "timeout")
                .unwrap_err()
                .to_string()
                .contains("366 days")
        );
        assert!(matches!(
            parse_duration("soon", "timeout"),
            Err(LimitError::NotDuration { .. })
        ));
        assert!(seconds(f64::NAN, "timeout").is_err());
        assert!(seconds(-1.0, "timeout").is_err());
        assert_eq!(seconds(1.5, "t").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("1000y", "timeout").is_err());
        assert!(parse_duration("100000000000000y", "timeout").is_err());
        assert_eq!(
            parse_duration("2m", "timeout").unwrap(),
            Duration::from_secs(120)
        );
    }
}
