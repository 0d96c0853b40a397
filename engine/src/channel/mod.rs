//! Channels: the key-value store a run's tasks share.
//!
//! [`ChannelBackend`] is the trait a store implements (memory here, Redis in the distributed
//! crate); [`Channel`] is the cheap, clonable handle tasks use. The memory store is reached
//! without dynamic dispatch or boxing, which keeps the hot path at tens of nanoseconds.

mod memory;
mod typed;

pub use memory::MemoryChannel;
pub use typed::{Typed, TypedView};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;

/// A channel operation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ChannelError {
    /// `append`/`prepend` on a key that holds something other than a list.
    #[error("channel key '{0}' exists but is not a list")]
    NotAList(String),
    /// `atomic_add` on a key that holds something other than a number.
    #[error("channel key '{key}' holds {found}, expected a number")]
    NotANumber {
        /// The key.
        key: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A typed read or write did not match its type.
    #[error("channel key '{key}': {message}")]
    Type {
        /// The key.
        key: String,
        /// The serde error.
        message: String,
    },
    /// The backing store is unreachable or answered with an error.
    #[error("channel backend error: {0}")]
    Backend(String),
}

/// The operations a channel store provides. Implement this for a new backend.
#[async_trait]
pub trait ChannelBackend: Send + Sync {
    /// A short name: `memory`, `redis`, ….
    fn kind(&self) -> &'static str;
    /// The value under `key`, if any (expired keys are absent).
    async fn get(&self, key: &str) -> Result<Option<Value>, ChannelError>;
    /// Store `value` under `key`; `ttl` sets an expiry, `None` clears any earlier one.
    async fn set(&self, key: &str, value: Value, ttl: Option<Duration>)
    -> Result<(), ChannelError>;
    /// Remove `key`; true when it existed.
    async fn delete(&self, key: &str) -> Result<bool, ChannelError>;
    /// Whether `key` holds a value.
    async fn exists(&self, key: &str) -> Result<bool, ChannelError>;
    /// All keys, sorted.
    async fn keys(&self) -> Result<Vec<String>, ChannelError>;
    /// Push onto the end of the list under `key` (created if missing); the new length.
    async fn append(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError>;
    /// Push onto the front of the list under `key` (created if missing); the new length.
    async fn prepend(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError>;
    /// Add `amount` to the number under `key` (0 if missing); the new value.
    async fn atomic_add(&self, key: &str, amount: f64) -> Result<Value, ChannelError>;
    /// Every key with its value.
    async fn snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError>;
    /// Remove every key.
    async fn clear(&self) -> Result<(), ChannelError>;
}

#[derive(Clone)]
enum Store {
    Memory(Arc<MemoryChannel>),
    Backend(Arc<dyn ChannelBackend>),
}

/// The handle to a run's channel. Clone it freely: clones share the same store.
#[derive(Clone)]
pub struct Channel {
    store: Store,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({})", self.kind())
    }
}

impl Default for Channel {
    fn default() -> Self {
        Channel::memory()
    }
}

macro_rules! dispatch {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        match &$self.store {
            Store::Memory(m) => m.$method($($arg),*),
            Store::Backend(b) => b.$method($($arg),*).await,
        }
    };
}

impl Channel {
    /// Every key with its value, for a run that ended: moved out of an in-memory channel no
    /// other handle shares (it is left empty: a big channel is not copied), copied otherwise.
    pub(crate) async fn final_snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError> {
        match &self.store {
            Store::Memory(m) if Arc::strong_count(m) == 1 => Ok(m.take_all()),
            Store::Memory(m) => m.snapshot(),
            Store::Backend(b) => b.snapshot().await,
        }
    }

    /// The in-memory store behind this handle, when it is one.
    pub(crate) fn memory_store(&self) -> Option<Arc<MemoryChannel>> {
        match &self.store {
            Store::Memory(m) => Some(m.clone()),
            Store::Backend(_) => None,
        }
    }

    /// A fresh in-memory channel.
    pub fn memory() -> Channel {
        Channel {
            store: Store::Memory(Arc::new(MemoryChannel::new())),
        }
    }

    /// A channel over any backend.
    pub fn from_backend(backend: Arc<dyn ChannelBackend>) -> Channel {
        Channel {
            store: Store::Backend(backend),
        }
    }

    /// The backend's name.
    pub fn kind(&self) -> &'static str {
        match &self.store {
            Store::Memory(_) => "memory",
            Store::Backend(b) => b.kind(),
        }
    }

    /// The value under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Value>, ChannelError> {
        dispatch!(self, get(key))
    }

    /// The value under `key`, or `default` when absent.
    pub async fn get_or(&self, key: &str, default: Value) -> Result<Value, ChannelError> {
        Ok(self.get(key).await?.unwrap_or(default))
    }

    /// Store `value` under `key` (no expiry).
    pub async fn set(&self, key: &str, value: impl Into<Value>) -> Result<(), ChannelError> {
        let value = value.into();
        dispatch!(self, set(key, value, None))
    }

    /// Store `value` under `key`, expiring after `ttl`.
    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: impl Into<Value>,
        ttl: Duration,
    ) -> Result<(), ChannelError> {
        let value = value.into();
        dispatch!(self, set(key, value, Some(ttl)))
    }

    /// Remove `key`; true when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, ChannelError> {
        dispatch!(self, delete(key))
    }

    /// Whether `key` holds a value.
    pub async fn exists(&self, key: &str) -> Result<bool, ChannelError> {
        dispatch!(self, exists(key))
    }

    /// All keys, sorted.
    pub async fn keys(&self) -> Result<Vec<String>, ChannelError> {
        dispatch!(self, keys())
    }

    /// Push onto the end of the list under `key`; the new length.
    pub async fn append(&self, key: &str, value: impl Into<Value>) -> Result<usize, ChannelError> {
        let value = value.into();
        dispatch!(self, append(key, value, None))
    }

    /// Push onto the front of the list under `key`; the new length.
    pub async fn prepend(&self, key: &str, value: impl Into<Value>) -> Result<usize, ChannelError> {
        let value = value.into();
        dispatch!(self, prepend(key, value, None))
    }

    /// Add `amount` to the number under `key`; the new value.
    pub async fn atomic_add(&self, key: &str, amount: f64) -> Result<Value, ChannelError> {
        dispatch!(self, atomic_add(key, amount))
    }

    /// Every key with its value.
    pub async fn snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError> {
        dispatch!(self, snapshot())
    }

    /// Make room for `additional` more keys at once (an in-memory channel about to be filled
    /// from a checkpoint), so the store does not grow by doubling and hold both tables at its
    /// peak. Other stores ignore it.
    pub(crate) fn reserve(&self, additional: usize) {
        if let Store::Memory(m) = &self.store {
            m.reserve(additional);
        }
    }

    /// Remove every key.
    pub async fn clear(&self) -> Result<(), ChannelError> {
        dispatch!(self, clear())
    }

    /// Every key with its value as one JSON object (keys sorted), serialized straight from the
    /// store: the fast path of checkpoints.
    pub async fn snapshot_json(&self) -> Result<Box<serde_json::value::RawValue>, ChannelError> {
        let text = match &self.store {
            Store::Memory(m) => m.snapshot_json()?,
            Store::Backend(b) => serde_json::to_string(&b.snapshot().await?)
                .map_err(|e| ChannelError::Backend(e.to_string()))?,
        };
        // Both texts were just written by a JSON writer: no need to parse them again.
        crate::checkpoint::json::raw(&text).map_err(|e| ChannelError::Backend(e.to_string()))
    }

    /// A typed view of one key: values are (de)serialized as `T`.
    pub fn typed<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        key: impl Into<String>,
    ) -> Typed<T> {
        Typed::new(self.clone(), key.into())
    }

    /// A struct whose fields are channel keys (optionally under `prefix.`): see [`TypedView`].
    pub fn view<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        prefix: Option<&str>,
    ) -> TypedView<T> {
        TypedView::new(self.clone(), prefix.map(str::to_string))
    }
}
