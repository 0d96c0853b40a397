//! Typed access to a channel: one key as a serde type ([`Typed`]), or a whole struct whose
//! fields are channel keys ([`TypedView`]).

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Channel, ChannelError};

fn type_error(key: &str, e: serde_json::Error) -> ChannelError {
    ChannelError::Type {
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// One channel key read and written as `T`.
pub struct Typed<T> {
    channel: Channel,
    key: String,
    _type: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Typed<T> {
    pub(super) fn new(channel: Channel, key: String) -> Self {
        Typed {
            channel,
            key,
            _type: PhantomData,
        }
    }

    /// The value, or `None` when the key is absent; an error when it does not fit `T`.
    pub async fn get(&self) -> Result<Option<T>, ChannelError> {
        match self.channel.get(&self.key).await? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| type_error(&self.key, e)),
        }
    }

    /// Store `value`.
    pub async fn set(&self, value: &T) -> Result<(), ChannelError> {
        let v = serde_json::to_value(value).map_err(|e| type_error(&self.key, e))?;
        self.channel.set(&self.key, v).await
    }
}

/// A struct `T` spread over channel keys: each field is the key `prefix.field` (or `field`
/// without a prefix). Tasks can then read and write single fields with plain channel calls.
pub struct TypedView<T> {
    channel: Channel,
    prefix: Option<String>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> TypedView<T> {
    pub(super) fn new(channel: Channel, prefix: Option<String>) -> Self {
        TypedView {
            channel,
            prefix,
            _type: PhantomData,
        }
    }

    fn key(&self, field: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}.{field}"),
            None => field.to_string(),
        }
    }

    /// Write every field of `value` to its key.
    pub async fn store(&self, value: &T) -> Result<(), ChannelError> {
        let label = self.prefix.as_deref().unwrap_or("<view>");
        match serde_json::to_value(value).map_err(|e| type_error(label, e))? {
            Value::Object(fields) => {
                for (field, v) in fields {
                    self.channel.set(&self.key(&field), v).await?;
                }
                Ok(())
            }
            _ => Err(ChannelError::Type {
                key: label.to_string(),
                message: "a typed view needs a struct or map type".into(),
            }),
        }
    }

    /// Read the struct back from its keys; missing fields use serde defaults or fail.
    pub async fn load(&self) -> Result<T, ChannelError> {
        let snapshot = self.channel.snapshot().await?;
        let fields: Map<String, Value> = match &self.prefix {
            Some(p) => {
                let dotted = format!("{p}.");
                snapshot
                    .into_iter()
                    .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|f| (f.to_string(), v)))
                    .collect()
            }
            None => snapshot.into_iter().collect(),
        };
        let label = self.prefix.as_deref().unwrap_or("<view>");
        serde_json::from_value(Value::Object(fields)).map_err(|e| type_error(label, e))
    }
}
