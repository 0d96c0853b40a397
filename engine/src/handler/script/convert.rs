//! Values crossing between Rhai and JSON: `Dynamic` ↔ `serde_json::Value` through Rhai's serde
//! support. JSON null is Rhai's unit `()` and back.

use rhai::{Dynamic, EvalAltResult, Position};
use serde_json::Value;

use super::api::Ctx;

/// A JSON value as a Rhai value (one nested deeper than
/// [`MAX_VALUE_DEPTH`](crate::limits::MAX_VALUE_DEPTH) is an error).
pub(super) fn to_dynamic(value: &Value) -> Result<Dynamic, Box<EvalAltResult>> {
    if value.is_null() {
        return Ok(Dynamic::UNIT);
    }
    crate::limits::check_value_depth(value, "the value").map_err(runtime_error)?;
    rhai::serde::to_dynamic(value)
}

/// Whether a Rhai value nests arrays and maps deeper than `MAX_VALUE_DEPTH` (the walk stops
/// there, so its own recursion is bounded).
fn too_deep(value: &Dynamic, depth: usize) -> bool {
    if depth > crate::limits::MAX_VALUE_DEPTH {
        return true;
    }
    if let Ok(items) = value.as_array_ref() {
        return items.iter().any(|v| too_deep(v, depth + 1));
    }
    if let Ok(map) = value.as_map_ref() {
        return map.values().any(|v| too_deep(v, depth + 1));
    }
    false
}

/// A JSON value as a Rhai value, or unit when absent.
pub(super) fn opt_to_dynamic(value: Option<Value>) -> Result<Dynamic, Box<EvalAltResult>> {
    match value {
        None => Ok(Dynamic::UNIT),
        Some(v) => to_dynamic(&v),
    }
}

/// A Rhai value as JSON; `what` names the value in the error (e.g. "the script's result").
pub(super) fn to_value(value: &Dynamic, what: &str) -> Result<Value, String> {
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if value.is::<Ctx>() {
        return Err(format!(
            "{what} is a TaskContext and cannot be turned into JSON"
        ));
    }
    if too_deep(value, 0) {
        return Err(format!(
            "{what} nests deeper than {} levels of arrays and maps",
            crate::limits::MAX_VALUE_DEPTH
        ));
    }
    rhai::serde::from_dynamic::<Value>(value).map_err(|e| {
        format!(
            "{what} is a {} and cannot be turned into JSON: {}",
            value.type_name(),
            plain(&e)
        )
    })
}

/// Like [`to_value`], as a script error.
pub(super) fn to_value_rt(value: &Dynamic, what: &str) -> Result<Value, Box<EvalAltResult>> {
    to_value(value, what).map_err(runtime_error)
}

/// A script error carrying `message`.
pub(super) fn runtime_error(message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), Position::NONE).into()
}

/// An error's text without Rhai's position suffix.
pub(super) fn plain(err: &EvalAltResult) -> String {
    let full = err.to_string();
    let pos = err.position();
    if pos.is_none() {
        return full;
    }
    let suffix = format!(" ({pos})");
    full.strip_suffix(&suffix)
        .map(str::to_string)
        .unwrap_or(full)
}

/// A value as text for messages: strings as they are, anything else as Rhai prints it.
pub(super) fn text(value: &Dynamic) -> String {
    match value.clone().into_immutable_string() {
        Ok(s) => s.to_string(),
        Err(_) => value.to_string(),
    }
}
