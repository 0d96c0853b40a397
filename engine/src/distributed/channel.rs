//! The run's channel in Redis, with exactly the memory channel's semantics: a list is a Redis
//! list of JSON elements (so appends and prepends from many workers are atomic and never
//! clobber), any other value is its JSON text (an empty list is the text `[]`), each key may
//! expire, and an index set lists the keys. Values are never decoded inside Redis: numbers
//! keep every digit.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisError, Value as Reply};
use serde_json::Value;

use crate::channel::{ChannelBackend, ChannelError};
use crate::distributed::wire::ChannelWrite;

use super::conn::{Link, retry};
use super::keys::RunKeys;
use super::scripts;

/// How long a channel operation waits for Redis to come back before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A run's channel in Redis.
pub struct RedisChannel {
    link: Link,
    keys: RunKeys,
    /// The prefix of the channel's keys (`P:{r:R}:c:`).
    key_prefix: String,
}

impl RedisChannel {
    /// The channel of the run whose keys are `keys`.
    pub fn new(link: Link, keys: RunKeys) -> Self {
        let key_prefix = keys.channel("");
        RedisChannel {
            link,
            keys,
            key_prefix,
        }
    }

    fn backend_error(&self, key: &str, e: RedisError) -> ChannelError {
        if let Some(detail) = e.detail().or(e.code()) {
            if detail.starts_with("NOTALIST") || e.code() == Some("NOTALIST") {
                return ChannelError::NotAList(key.to_string());
            }
            if let Some(found) = detail
                .strip_prefix("NAN ")
                .or_else(|| e.code().filter(|c| *c == "NAN").and_then(|_| e.detail()))
            {
                return ChannelError::NotANumber {
                    key: key.to_string(),
                    found: json_type_name(found),
                };
            }
        }
        ChannelError::Backend(format!("Redis at {}: {e}", self.link.address()))
    }
}

/// The static name of a JSON type as the scripts spell it.
fn json_type_name(found: &str) -> &'static str {
    match found.trim() {
        "a string" => "a string",
        "a list" => "a list",
        "a map" => "a map",
        "a boolean" => "a boolean",
        "null" => "null",
        _ => "something else",
    }
}

fn text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Reply::SimpleString(s) => Some(s.clone()),
        Reply::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn parse(json: &str) -> Result<Value, ChannelError> {
    serde_json::from_str(json)
        .map_err(|e| ChannelError::Backend(format!("a channel value is not JSON: {e}")))
}

/// Decode `[kind, data…]` as the get and dump scripts return it.
fn decode(parts: &[Reply]) -> Result<Option<Value>, ChannelError> {
    match parts.first().and_then(text).as_deref() {
        Some("s") => {
            let json = parts.get(1).and_then(text).unwrap_or_default();
            parse(&json).map(Some)
        }
        Some("l") => parts[1..]
            .iter()
            .map(|p| parse(&text(p).unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| Some(Value::Array(items))),
        _ => Ok(None),
    }
}

fn ttl_arg(ttl: Option<Duration>) -> String {
    ttl.map(|t| t.as_millis().max(1).to_string())
        .unwrap_or_default()
}

fn to_json(v: &Value) -> String {
    // Serializing a `Value` cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl RedisChannel {
    async fn dump(&self, values: bool) -> Result<Vec<Vec<Reply>>, ChannelError> {
        let index = self.keys.channel_index();
        let prefix = self.key_prefix.clone();
        let flag = if values { "1" } else { "0" };
        retry(
            &self.link,
            "reading the channel",
            Some(PATIENCE),
            |mut c| {
                let (index, prefix) = (index.clone(), prefix.clone());
                async move {
                    scripts::CH_DUMP
                        .key(index)
                        .arg(prefix)
                        .arg(flag)
                        .invoke_async::<Vec<Vec<Reply>>>(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| self.backend_error("*", e))
    }

    async fn push(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
        side: &'static str,
    ) -> Result<usize, ChannelError> {
        let (k, index) = (self.keys.channel(key), self.keys.channel_index());
        let (element, ttl) = (to_json(&value), ttl_arg(ttl));
        retry(
            &self.link,
            "writing the channel",
            Some(PATIENCE),
            |mut c| {
                let (k, index, element, ttl) =
                    (k.clone(), index.clone(), element.clone(), ttl.clone());
                async move {
                    scripts::CH_PUSH
                        .key(k)
                        .key(index)
                        .arg(side)
                        .arg(element)
                        .arg(ttl)
                        .arg(key)
                        .invoke_async::<usize>(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| self.backend_error(key, e))
    }
}

#[async_trait]
impl ChannelBackend for RedisChannel {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Value>, ChannelError> {
        let k = self.keys.channel(key);
        let parts = retry(
            &self.link,
            "reading the channel",
            Some(PATIENCE),
            |mut c| {
                let k = k.clone();
                async move {
                    scripts::CH_GET
                        .key(k)
                        .invoke_async::<Vec<Reply>>(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| self.backend_error(key, e))?;
        decode(&parts)
    }

    async fn set(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<(), ChannelError> {
        let (k, index) = (self.keys.channel(key), self.keys.channel_index());
        let (kind, items): (&str, Vec<String>) = match &value {
            Value::Array(items) if !items.is_empty() => ("l", items.iter().map(to_json).collect()),
            other => ("s", vec![to_json(other)]),
        };
        let ttl = ttl_arg(ttl);
        retry(
            &self.link,
            "writing the channel",
            Some(PATIENCE),
            |mut c| {
                let mut call = scripts::CH_SET.key(k.clone());
                call.key(index.clone()).arg(kind).arg(ttl.clone()).arg(key);
                for item in &items {
                    call.arg(item);
                }
                async move { call.invoke_async::<()>(&mut c).await }
            },
        )
        .await
        .map_err(|e| self.backend_error(key, e))
    }

    async fn delete(&self, key: &str) -> Result<bool, ChannelError> {
        let (k, index) = (self.keys.channel(key), self.keys.channel_index());
        retry(
            &self.link,
            "writing the channel",
            Some(PATIENCE),
            |mut c| {
                let (k, index) = (k.clone(), index.clone());
                async move {
                    scripts::CH_DELETE
                        .key(k)
                        .key(index)
                        .arg(key)
                        .invoke_async::<i64>(&mut c)
                        .await
                }
            },
        )
        .await
        .map(|n| n > 0)
        .map_err(|e| self.backend_error(key, e))
    }

    async fn exists(&self, key: &str) -> Result<bool, ChannelError> {
        let k = self.keys.channel(key);
        retry(
            &self.link,
            "reading the channel",
            Some(PATIENCE),
            |mut c| {
                let k = k.clone();
                async move { redis::cmd("EXISTS").arg(k).query_async::<i64>(&mut c).await }
            },
        )
        .await
        .map(|n| n > 0)
        .map_err(|e| self.backend_error(key, e))
    }

    async fn keys(&self) -> Result<Vec<String>, ChannelError> {
        let mut keys: Vec<String> = self
            .dump(false)
            .await?
            .iter()
            .filter_map(|entry| entry.first().and_then(text))
            .collect();
        keys.sort_unstable();
        Ok(keys)
    }

    async fn append(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        self.push(key, value, ttl, "r").await
    }

    async fn prepend(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<usize, ChannelError> {
        self.push(key, value, ttl, "l").await
    }

    async fn atomic_add(&self, key: &str, amount: f64) -> Result<Value, ChannelError> {
        if !amount.is_finite() {
            return Err(ChannelError::Backend(format!(
                "cannot add {amount} to channel key '{key}'"
            )));
        }
        let (k, index) = (self.keys.channel(key), self.keys.channel_index());
        let integral = if amount.fract() == 0.0 { "1" } else { "0" };
        // `{}` prints the shortest text that reads back as the same f64.
        let amount_text = format!("{amount}");
        let json = retry(
            &self.link,
            "writing the channel",
            Some(PATIENCE),
            |mut c| {
                let (k, index, amount_text) = (k.clone(), index.clone(), amount_text.clone());
                async move {
                    scripts::CH_ADD
                        .key(k)
                        .key(index)
                        .arg(amount_text)
                        .arg(integral)
                        .arg(key)
                        .invoke_async::<String>(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| self.backend_error(key, e))?;
        parse(&json)
    }

    async fn snapshot(&self) -> Result<BTreeMap<String, Value>, ChannelError> {
        let mut out = BTreeMap::new();
        for entry in self.dump(true).await? {
            let Some(name) = entry.first().and_then(text) else {
                continue;
            };
            if let Some(value) = decode(&entry[1..])? {
                out.insert(name, value);
            }
        }
        Ok(out)
    }

    async fn clear(&self) -> Result<(), ChannelError> {
        let index = self.keys.channel_index();
        let prefix = self.key_prefix.clone();
        retry(
            &self.link,
            "clearing the channel",
            Some(PATIENCE),
            |mut c| {
                let (index, prefix) = (index.clone(), prefix.clone());
                async move {
                    scripts::CH_CLEAR
                        .key(index)
                        .arg(prefix)
                        .invoke_async::<()>(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| self.backend_error("*", e))
    }
}

/// Apply recorded writes to `channel` (a resumed run replaying a reused outcome).
pub(crate) async fn replay(
    channel: &dyn ChannelBackend,
    writes: Vec<ChannelWrite>,
) -> Result<(), ChannelError> {
    for w in writes {
        match w {
            ChannelWrite::Set { key, value, ttl_ms } => {
                channel
                    .set(&key, value, ttl_ms.map(Duration::from_millis))
                    .await?
            }
            ChannelWrite::Delete { key } => {
                channel.delete(&key).await?;
            }
            ChannelWrite::Push {
                key,
                value,
                ttl_ms,
                front,
            } => {
                let ttl = ttl_ms.map(Duration::from_millis);
                if front {
                    channel.prepend(&key, value, ttl).await?;
                } else {
                    channel.append(&key, value, ttl).await?;
                }
            }
            ChannelWrite::Add { key, amount } => {
                channel.atomic_add(&key, amount).await?;
            }
            ChannelWrite::Clear => channel.clear().await?,
        }
    }
    Ok(())
}
