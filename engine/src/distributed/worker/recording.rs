//! The channel a body on a worker writes through: every write goes to the run's Redis
//! channel at once and is also recorded, so the writes travel with the committed outcome
//! (see [`ChannelWrite`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;

use crate::channel::{ChannelBackend, ChannelError};
use crate::distributed::wire::ChannelWrite;

/// Writes through to `inner`, recording each successful write.
pub(crate) struct Recording {
    inner: Arc<dyn ChannelBackend>,
    writes: Mutex<Vec<ChannelWrite>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn ChannelBackend>) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            writes: Mutex::new(Vec::new()),
        })
    }

    /// The writes so far.
    pub fn take(&self) -> Vec<ChannelWrite> {
        std::mem::take(&mut *self.writes.lock())
    }

    fn record(&self, w: ChannelWrite) {
        self.writes.lock().push(w);
    }
}

fn ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|t| t.as_millis().min(u64::MAX as u128) as u64)
}

#[async_trait]
impl ChannelBackend for Recording {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn get(&self, key: &str) -> Result<Option<Value>, ChannelError> {
        self.inner.get(key).await
    }
    async fn set(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<(), ChannelError> {
        self.inner.set(key, value.clone(), ttl).await?;
        self.record(ChannelWrite::Set {
            key: key.to_string(),
            value,
            ttl_ms: ms(ttl),
        });
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, ChannelError> {
        let existed = self.inner.delete(key).await?;
        self.record(ChannelWrite::Delete {
            key: key.to_string(),
        });
        Ok(existed)
    }
    async fn exists(&self, key: &str) -> Result<bool, ChannelError> {
        self.inner.exists(key).await
    }
    async fn keys(&self) -> Result<Vec<String>, ChannelError> {
        self.inner.keys().await
    }
    async fn append(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        let n = self.inner.append(key, value.clone(), ttl).await?;
        self.record(ChannelWrite::Push {
            key: key.to_string(),
            value,
            ttl_ms: ms(ttl),
            front: false,
        });
        Ok(n)
    }
    async fn prepend(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        let n = self.inner.prepend(key, value.clone(), ttl).await?;
        self.record(ChannelWrite::Push {
            key: key.to_string(),
            value,
            ttl_ms: ms(ttl),
            front: true,
        });
        Ok(n)
    }
    async fn atomic_add(&self, key: &str, amount: f64) -> Result<Value, ChannelError> {
        let v = self.inner.atomic_add(key, amount).await?;
        self.record(ChannelWrite::Add {
            key: key.to_string(),
            amount,
        });
        Ok(v)
    }
    async fn snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError> {
        self.inner.snapshot().await
    }
    async fn clear(&self) -> Result<(), ChannelError> {
        self.inner.clear().await?;
        self.record(ChannelWrite::Clear);
        Ok(())
    }
}
