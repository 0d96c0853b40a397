//! The in-memory channel: a hash map behind a mutex, with lazily checked expiry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::{ChannelBackend, ChannelError};

struct Entry {
    value: Value,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: &mut Option<Instant>) -> bool {
        match self.expires {
            None => true,
            Some(deadline) => deadline > *now.get_or_insert_with(Instant::now),
        }
    }
}

/// The live entries of `map`, by key.
fn live_sorted(map: &FxHashMap<String, Entry>) -> Vec<(&String, &Value)> {
    let mut now = None;
    let mut live: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(_, e)| e.live(&mut now))
        .map(|(k, e)| (k, &e.value))
        .collect();
    live.sort_unstable_by(|a, b| a.0.cmp(b.0));
    live
}

impl std::fmt::Debug for MemoryChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryChannel({} keys)", self.map.lock().len())
    }
}

/// A channel held in this process's memory. Safe under concurrent tasks: every operation
/// holds the lock for its whole read-modify-write, so appends from parallel members accumulate.
#[derive(Default)]
pub struct MemoryChannel {
    map: Mutex<FxHashMap<String, Entry>>,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl MemoryChannel {
    /// An empty channel.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Value>, ChannelError> {
        let mut map = self.map.lock();
        let mut now = None;
        match map.get(key) {
            Some(e) if e.live(&mut now) => Ok(Some(e.value.clone())),
            Some(_) => {
                map.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Store a value; `ttl` sets an expiry, `None` clears an earlier one.
    pub fn set(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<(), ChannelError> {
        // A time to live too long to represent never expires.
        let expires = ttl.and_then(|t| Instant::now().checked_add(t));
        let mut map = self.map.lock();
        match map.get_mut(key) {
            Some(e) => {
                e.value = value;
                e.expires = expires;
            }
            None => {
                map.insert(key.to_string(), Entry { value, expires });
            }
        }
        Ok(())
    }

    /// Remove a key; true when it held a live value.
    pub fn delete(&self, key: &str) -> Result<bool, ChannelError> {
        let mut now = None;
        Ok(self
            .map
            .lock()
            .remove(key)
            .is_some_and(|e| e.live(&mut now)))
    }

    /// Whether the key holds a live value.
    pub fn exists(&self, key: &str) -> Result<bool, ChannelError> {
        Ok(self.get(key)?.is_some())
    }

    /// Live keys, sorted.
    pub fn keys(&self) -> Result<Vec<String>, ChannelError> {
        let mut map = self.map.lock();
        let mut now = None;
        map.retain(|_, e| e.live(&mut now));
        let mut keys: Vec<String> = map.keys().cloned().collect();
        keys.sort_unstable();
        Ok(keys)
    }

    fn push(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
        front: bool,
    ) -> Result<usize, ChannelError> {
        let mut map = self.map.lock();
        let mut now = None;
        let entry = map.entry(key.to_string()).or_insert(Entry {
            value: Value::Array(Vec::new()),
            expires: None,
        });
        if !entry.live(&mut now) {
            *entry = Entry {
                value: Value::Array(Vec::new()),
                expires: None,
            };
        }
        let Value::Array(list) = &mut entry.value else {
            return Err(ChannelError::NotAList(key.to_string()));
        };
        if front {
            list.insert(0, value);
        } else {
            list.push(value);
        }
        let len = list.len();
        if let Some(t) = ttl {
            entry.expires = Instant::now().checked_add(t);
        }
        Ok(len)
    }

    /// Push onto the end of a list.
    pub fn append(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        self.push(key, value, ttl, false)
    }

    /// Push onto the front of a list.
    pub fn prepend(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        self.push(key, value, ttl, true)
    }

    /// Add to a number; integers stay integers while the sum is integral.
    pub fn atomic_add(&self, key: &str, amount: f64) -> Result<Value, ChannelError> {
        let mut map = self.map.lock();
        let mut now = None;
        let entry = map.entry(key.to_string()).or_insert(Entry {
            value: Value::from(0),
            expires: None,
        });
        if !entry.live(&mut now) {
            *entry = Entry {
                value: Value::from(0),
                expires: None,
            };
        }
        let current = entry
            .value
            .as_f64()
            .ok_or_else(|| ChannelError::NotANumber {
                key: key.to_string(),
                found: json_type(&entry.value),
            })?;
        let sum = current + amount;
        let integral = entry.value.is_i64() && amount.fract() == 0.0 && sum.abs() < 9.0e15;
        entry.value = if integral {
            Value::from(sum as i64)
        } else {
            serde_json::Number::from_f64(sum)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        };
        Ok(entry.value.clone())
    }

    /// Every live key with its value.
    pub fn snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError> {
        let map = self.map.lock();
        let mut now = None;
        Ok(map
            .iter()
            .filter(|(_, e)| e.live(&mut now))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect())
    }

    /// Move every live key with its value out, leaving the channel empty.
    pub fn take_all(&self) -> BTreeMap<String, Value> {
        let map = std::mem::take(&mut *self.map.lock());
        let mut now = None;
        map.into_iter()
            .filter(|(_, e)| e.live(&mut now))
            .map(|(k, e)| (k, e.value))
            .collect()
    }

    /// Serialize every live key with its value as one map (keys sorted), straight from the
    /// channel: nothing is copied, and the channel is locked until it is done (a checkpoint
    /// writes it while its run waits).
    pub fn serialize_live<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map = self.map.lock();
        let live = live_sorted(&map);
        // Each value goes through the checkpoint's fast JSON writer, one at a time.
        use crate::checkpoint::json::{Verbatim, write_value};
        use serde::ser::{Error, SerializeMap};
        let mut out = serializer.serialize_map(Some(live.len()))?;
        let mut text = Vec::with_capacity(4096);
        for (key, value) in live {
            text.clear();
            write_value(&mut text, value);
            let text = std::str::from_utf8(&text).map_err(S::Error::custom)?;
            out.serialize_entry(key, &Verbatim(text))?;
        }
        out.end()
    }

    /// Every live key with its value as JSON text (keys sorted), without copying the values.
    pub fn snapshot_json(&self) -> Result<String, ChannelError> {
        use crate::checkpoint::json::{write_str, write_value};
        let map = self.map.lock();
        let live = live_sorted(&map);
        let mut out = Vec::with_capacity(live.len() * 64);
        out.push(b'{');
        for (i, (k, v)) in live.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, k);
            out.push(b':');
            write_value(&mut out, v);
        }
        out.push(b'}');
        String::from_utf8(out).map_err(|e| ChannelError::Backend(e.to_string()))
    }

    /// Make room for `additional` more keys at once.
    pub fn reserve(&self, additional: usize) {
        self.map.lock().reserve(additional);
    }

    /// Remove every key.
    pub fn clear(&self) -> Result<(), ChannelError> {
        self.map.lock().clear();
        Ok(())
    }
}

#[async_trait]
impl ChannelBackend for MemoryChannel {
    fn kind(&self) -> &'static str {
        "memory"
    }
    async fn get(&self, key: &str) -> Result<Option<Value>, ChannelError> {
        MemoryChannel::get(self, key)
    }
    async fn set(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<(), ChannelError> {
        MemoryChannel::set(self, key, value, ttl)
    }
    async fn delete(&self, key: &str) -> Result<bool, ChannelError> {
        MemoryChannel::delete(self, key)
    }
    async fn exists(&self, key: &str) -> Result<bool, ChannelError> {
        MemoryChannel::exists(self, key)
    }
    async fn keys(&self) -> Result<Vec<String>, ChannelError> {
        MemoryChannel::keys(self)
    }
    async fn append(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        MemoryChannel::append(self, key, value, ttl)
    }
    async fn prepend(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        MemoryChannel::prepend(self, key, value, ttl)
    }
    async fn atomic_add(&self, key: &str, amount: f64) -> Result<Value, ChannelError> {
        MemoryChannel::atomic_add(self, key, amount)
    }
    async fn snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError> {
        MemoryChannel::snapshot(self)
    }
    async fn clear(&self) -> Result<(), ChannelError> {
        MemoryChannel::clear(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> MemoryChannel {
        let ch = MemoryChannel::new();
        for (k, v) in [
            ("b", json!({"list": [1, 2.5, "x\n\"y\""], "none": null})),
            ("a", json!("é ☃ \u{1}")),
            ("c", json!(true)),
        ] {
            ch.set(k, v, None).unwrap_or_else(|e| panic!("{e}"));
        }
        ch.set("gone", json!(1), Some(Duration::ZERO))
            .unwrap_or_else(|e| panic!("{e}"));
        ch
    }

    #[test]
    fn the_live_serialization_matches_the_snapshot() {
        let ch = sample();
        let mut live = Vec::new();
        ch.serialize_live(&mut serde_json::Serializer::new(&mut live))
            .unwrap_or_else(|e| panic!("{e}"));
        let snapshot = ch.snapshot().unwrap_or_else(|e| panic!("{e}"));
        assert!(!snapshot.contains_key("gone"), "expired keys are left out");
        assert_eq!(
            String::from_utf8_lossy(&live),
            serde_json::to_string(&snapshot).unwrap_or_default()
        );
        assert_eq!(
            String::from_utf8_lossy(&live),
            ch.snapshot_json().unwrap_or_default()
        );
    }

    #[test]
    fn taking_everything_moves_the_live_values_out() {
        let ch = sample();
        let snapshot = ch.snapshot().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ch.take_all(), snapshot);
        assert!(ch.snapshot().unwrap_or_default().is_empty());
    }
}
