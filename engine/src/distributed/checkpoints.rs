//! Checkpoints in the fleet's Redis ([`RedisCheckpoints`]), so a run checkpointed on one
//! machine resumes on any other (`graflow resume NAME --backend redis://…`), without a shared
//! disk. Each checkpoint is the exact bytes of its `.ckpt` file under `P:{r:R}:ckpt:<seq>` (the
//! run's hash tag), so reading it runs the same checks as reading a file: header, length,
//! CRC-32, decompression, schema. Its listing entry (a [`CheckpointInfo`] as JSON) sits in the
//! hash `P:checkpoint-info` under its name (`<workflow>-<run>-<seq>`), and the name in the
//! sorted set `P:checkpoints` by time of writing, so listings never fetch a checkpoint's state.
//!
//! Uploads go in chunks of 4 MiB to a temporary key that is renamed in place once complete: a
//! reader never sees half a checkpoint. A checkpoint above [`MAX_CHECKPOINT_BYTES`] (256 MiB,
//! half of Redis's 512 MB string limit) is refused with [`CheckpointError::TooLarge`]. Keys
//! expire after the fleet's retention (or the workflow's `keep_for` when longer), and
//! `keep_last` / `keep_for` prune them as they prune files. Everything read from Redis is
//! untrusted: a listing entry that does not parse or names another checkpoint is skipped (and
//! reported with its key), a checkpoint whose bytes fail validation is refused naming its key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::checkpoint::store::{self, CheckpointInfo};
use crate::checkpoint::stores::decode_stored;
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, Listing, StoredCheckpoint};
use crate::distributed::conn::{Conn, Link, retry};
use crate::distributed::keys::Keys;

/// The largest checkpoint kept in Redis: 256 MiB (a Redis string holds at most 512 MB; a
/// bigger checkpoint stays on the machine that wrote it, with a warning).
pub const MAX_CHECKPOINT_BYTES: u64 = 256 * 1024 * 1024;

/// Bytes sent or read per command.
const CHUNK: usize = 4 * 1024 * 1024;

/// Checkpoints in the fleet's Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisCheckpoints {
    link: Link,
    keys: Keys,
    retention: Duration,
    max_bytes: u64,
    wait: Duration,
}

impl std::fmt::Debug for RedisCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RedisCheckpoints({}, prefix {})",
            self.link.address(),
            self.keys.prefix()
        )
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (now when it does not parse).
fn millis(time: &str) -> u64 {
    humantime::parse_rfc3339_weak(time)
        .unwrap_or_else(|_| SystemTime::now())
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RedisCheckpoints {
    /// Checkpoints under `keys`, kept for `retention` (at least a minute) after they are
    /// written; waits up to 5 s for Redis when it is away.
    pub fn new(link: Link, keys: Keys, retention: Duration) -> Self {
        RedisCheckpoints {
            link,
            keys,
            retention: retention.max(Duration::from_secs(60)),
            max_bytes: MAX_CHECKPOINT_BYTES,
            wait: Duration::from_secs(5),
        }
    }

    /// Keep checkpoints of at most `bytes` (capped at [`MAX_CHECKPOINT_BYTES`]).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.min(MAX_CHECKPOINT_BYTES);
        self
    }

    /// Wait at most this long for Redis when it is away, per operation.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The key checkpoint `seq` of run `run_id` is kept under.
    pub fn key_of(&self, run_id: &str, seq: u32) -> String {
        self.keys.run(run_id).checkpoint(seq)
    }

    /// Run `op` on Redis, asking again while Redis is away (up to the store's wait); a
    /// failure says what was being done (`what`).
    async fn ask<T, F, Fut>(&self, what: &str, op: F) -> Result<T, CheckpointError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        retry(&self.link, what, Some(self.wait), op)
            .await
            .map_err(|e| self.unavailable(what, e))
    }

    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::Unavailable(format!("{}: {what}: {e}", self.describe()))
    }

    fn stored(&self, key: &str, source: CheckpointError) -> CheckpointError {
        CheckpointError::Stored {
            store: self.describe(),
            key: key.to_string(),
            source: Box::new(source),
        }
    }

    /// The listing entry kept under `reference`, checked: it parses and names itself.
    fn parse_entry(&self, reference: &str, text: &str) -> Result<CheckpointInfo, CheckpointError> {
        let field = format!("{} (field '{reference}')", self.keys.checkpoint_info());
        let info: CheckpointInfo = serde_json::from_str(text).map_err(|e| {
            self.stored(
                &field,
                CheckpointError::Invalid(format!("not a checkpoint listing entry: {e}")),
            )
        })?;
        let named = store::reference(&info);
        if named != reference {
            return Err(self.stored(
                &field,
                CheckpointError::Invalid(format!(
                    "the entry describes checkpoint '{named}', not '{reference}'"
                )),
            ));
        }
        Ok(info)
    }

    /// The listing entry of `reference`.
    async fn entry(&self, reference: &str) -> Result<CheckpointInfo, CheckpointError> {
        let info_key = self.keys.checkpoint_info();
        let text: Option<String> = self
            .ask("reading a checkpoint's entry", |mut c| {
                let (info_key, reference) = (info_key.clone(), reference.to_string());
                async move {
                    redis::cmd("HGET")
                        .arg(info_key)
                        .arg(reference)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        let text = text.ok_or_else(|| CheckpointError::NotFound {
            reference: reference.to_string(),
            store: self.describe(),
        })?;
        self.parse_entry(reference, &text)
    }

    /// The bytes under `key`, read in chunks, at most `max_bytes`.
    async fn read_blob(&self, key: &str) -> Result<Vec<u8>, CheckpointError> {
        let wrong = |e: &redis::RedisError| e.code() == Some("WRONGTYPE");
        let sized: Result<(u64, bool), redis::RedisError> = retry(
            &self.link,
            "reading a checkpoint",
            Some(self.wait),
            |mut c| {
                let key = key.to_string();
                async move {
                    let len: u64 = redis::cmd("STRLEN").arg(&key).query_async(&mut c).await?;
                    let exists: bool = redis::cmd("EXISTS").arg(&key).query_async(&mut c).await?;
                    Ok((len, exists))
                }
            },
        )
        .await;
        let (len, exists) = match sized {
            Ok(v) => v,
            Err(e) if wrong(&e) => {
                return Err(self.stored(
                    key,
                    CheckpointError::Invalid(
                        "it holds another type of value, not a checkpoint".into(),
                    ),
                ));
            }
            Err(e) => return Err(self.unavailable("reading a checkpoint", e)),
        };
        if !exists {
            return Err(self.stored(
                key,
                CheckpointError::Invalid(
                    "the checkpoint's bytes are gone (expired or deleted); its entry is stale"
                        .into(),
                ),
            ));
        }
        if len > self.max_bytes {
            return Err(self.stored(
                key,
                CheckpointError::TooLarge {
                    bytes: len,
                    limit: self.max_bytes,
                    store: self.describe(),
                },
            ));
        }
        let mut out: Vec<u8> = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let start = out.len() as u64;
            let end = (start + CHUNK as u64).min(len) - 1;
            let part: Vec<u8> = self
                .ask("reading a checkpoint", |mut c| {
                    let key = key.to_string();
                    async move {
                        redis::cmd("GETRANGE")
                            .arg(key)
                            .arg(start)
                            .arg(end)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            if part.is_empty() {
                // Shortened meanwhile: what was read is checked (and refused) as it is.
                break;
            }
            out.extend_from_slice(&part);
        }
        Ok(out)
    }

    /// Remove checkpoints by name: their bytes, entries and index members.
    async fn remove(&self, infos: &[&CheckpointInfo]) -> Result<(), CheckpointError> {
        if infos.is_empty() {
            return Ok(());
        }
        let refs: Vec<String> = infos.iter().map(|i| store::reference(i)).collect();
        let blobs: Vec<String> = infos
            .iter()
            .map(|i| self.key_of(&i.run_id, i.seq))
            .collect();
        self.forget(&refs).await?;
        for blob in blobs {
            self.ask("pruning checkpoints", |mut c| {
                let blob = blob.clone();
                async move { redis::cmd("DEL").arg(blob).query_async::<()>(&mut c).await }
            })
            .await?;
        }
        Ok(())
    }

    /// Drop names from the index and their entries.
    async fn forget(&self, refs: &[String]) -> Result<(), CheckpointError> {
        if refs.is_empty() {
            return Ok(());
        }
        let (index, info) = (self.keys.checkpoints(), self.keys.checkpoint_info());
        self.ask("pruning checkpoints", |mut c| {
            let mut pipe = redis::pipe();
            pipe.cmd("ZREM").arg(&index).arg(refs).ignore();
            pipe.cmd("HDEL").arg(&info).arg(refs).ignore();
            async move { pipe.query_async::<()>(&mut c).await }
        })
        .await
    }
}

#[async_trait]
impl CheckpointStore for RedisCheckpoints {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        format!("Redis at {}", self.link.address())
    }

    async fn put(
        &self,
        info: &CheckpointInfo,
        bytes: Vec<u8>,
    ) -> Result<StoredCheckpoint, CheckpointError> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(CheckpointError::TooLarge {
                bytes: size,
                limit: self.max_bytes,
                store: self.describe(),
            });
        }
        let mut info = info.clone();
        info.size_bytes = size;
        let reference = store::reference(&info);
        let run = self.keys.run(&info.run_id);
        let key = run.checkpoint(info.seq);
        let top = run.checkpoint_top();
        let tmp = format!("{key}:upload-{:016x}", rand::random::<u64>());
        let ttl = self.retention.as_secs();
        let bytes = std::sync::Arc::new(bytes);
        let seq = info.seq;
        self.ask("keeping a checkpoint", |mut c| {
            let (bytes, key, tmp, top) = (bytes.clone(), key.clone(), tmp.clone(), top.clone());
            async move {
                let mut chunks = bytes.chunks(CHUNK);
                let first = chunks.next().unwrap_or(&[]);
                redis::cmd("SET")
                    .arg(&tmp)
                    .arg(first)
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<()>(&mut c)
                    .await?;
                for chunk in chunks {
                    redis::cmd("APPEND")
                        .arg(&tmp)
                        .arg(chunk)
                        .query_async::<()>(&mut c)
                        .await?;
                }
                // One slot (the run's hash tag): published whole, atomically.
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("RENAME")
                    .arg(&tmp)
                    .arg(&key)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&key)
                    .arg(ttl)
                    .ignore()
                    .cmd("ZADD")
                    .arg(&top)
                    .arg("GT")
                    .arg(seq)
                    .arg("top")
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&top)
                    .arg(ttl)
                    .ignore();
                pipe.query_async::<()>(&mut c).await
            }
        })
        .await?;
        let entry = serde_json::to_string(&info)
            .map_err(|e| CheckpointError::Invalid(format!("cannot serialize: {e}")))?;
        let (index, info_key) = (self.keys.checkpoints(), self.keys.checkpoint_info());
        let score = millis(&info.created_at);
        self.ask("indexing a checkpoint", |mut c| {
            let mut pipe = redis::pipe();
            pipe.cmd("HSET")
                .arg(&info_key)
                .arg(&reference)
                .arg(&entry)
                .ignore()
                .cmd("ZADD")
                .arg(&index)
                .arg(score)
                .arg(&reference)
                .ignore();
            async move { pipe.query_async::<()>(&mut c).await }
        })
        .await?;
        Ok(StoredCheckpoint {
            info,
            reference,
            location: key,
        })
    }

    async fn list(&self) -> Result<Listing, CheckpointError> {
        let (index, info_key) = (self.keys.checkpoints(), self.keys.checkpoint_info());
        let refs: Vec<String> = self
            .ask("listing checkpoints", |mut c| {
                let index = index.clone();
                async move {
                    redis::cmd("ZREVRANGE")
                        .arg(index)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        let mut listing = Listing::default();
        if refs.is_empty() {
            return Ok(listing);
        }
        let texts: Vec<Option<String>> = self
            .ask("listing checkpoints", |mut c| {
                let (info_key, refs) = (info_key.clone(), refs.clone());
                async move {
                    redis::cmd("HMGET")
                        .arg(info_key)
                        .arg(refs)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        let mut stale = Vec::new();
        let mut found = Vec::new();
        for (reference, text) in refs.iter().zip(texts) {
            match text {
                None => stale.push(reference.clone()),
                Some(text) => match self.parse_entry(reference, &text) {
                    Ok(info) => found.push((reference.clone(), info)),
                    Err(e) => listing.skipped.push(e.to_string()),
                },
            }
        }
        let blobs: Vec<String> = found
            .iter()
            .map(|(_, i)| self.key_of(&i.run_id, i.seq))
            .collect();
        let present: Vec<bool> = if blobs.is_empty() {
            Vec::new()
        } else {
            self.ask("listing checkpoints", |mut c| {
                let mut pipe = redis::pipe();
                for blob in &blobs {
                    pipe.cmd("EXISTS").arg(blob);
                }
                async move { pipe.query_async(&mut c).await }
            })
            .await?
        };
        for (((reference, info), blob), there) in found.into_iter().zip(blobs).zip(present) {
            if there {
                listing.entries.push(StoredCheckpoint {
                    info,
                    reference,
                    location: blob,
                });
            } else {
                // Expired (or deleted): the entry goes too.
                stale.push(reference);
            }
        }
        // Tidying is best effort: a listing is still a listing without it.
        let _ = self.forget(&stale).await;
        listing.entries.sort_by(|a, b| {
            b.info
                .created_at
                .cmp(&a.info.created_at)
                .then(b.info.seq.cmp(&a.info.seq))
        });
        Ok(listing)
    }

    async fn fetch(&self, reference: &str) -> Result<Vec<u8>, CheckpointError> {
        let info = self.entry(reference).await?;
        self.read_blob(&self.key_of(&info.run_id, info.seq)).await
    }

    async fn load(
        &self,
        reference: &str,
        key: Option<&[u8]>,
    ) -> Result<(Checkpoint, bool), CheckpointError> {
        let info = self.entry(reference).await?;
        let blob = self.key_of(&info.run_id, info.seq);
        let bytes = self.read_blob(&blob).await?;
        decode_stored(
            bytes,
            &blob,
            &self.describe(),
            Some((&info.run_id, info.seq)),
            key,
        )
        .await
    }

    async fn prune(
        &self,
        workflow: &str,
        keep_last: Option<usize>,
        keep_for: Option<Duration>,
        now: SystemTime,
    ) -> Result<Vec<String>, CheckpointError> {
        if keep_last.is_none() && keep_for.is_none() {
            return Ok(Vec::new());
        }
        let listed: Vec<CheckpointInfo> = self
            .list()
            .await?
            .entries
            .into_iter()
            .map(|e| e.info)
            .collect();
        let mut stale: Vec<&CheckpointInfo> = Vec::new();
        if let Some(keep) = keep_last {
            stale.extend(store::beyond_count(&listed, workflow, keep.max(1)));
        }
        if let Some(age) = keep_for {
            for info in store::older_than(&listed, workflow, age, now) {
                if !stale.iter().any(|s| std::ptr::eq(*s, info)) {
                    stale.push(info);
                }
            }
        }
        self.remove(&stale).await?;
        Ok(stale.iter().map(|i| store::reference(i)).collect())
    }

    async fn highest_seq(&self, run_id: &str) -> Result<u32, CheckpointError> {
        let top = self.keys.run(run_id).checkpoint_top();
        let score: Option<f64> = self
            .ask("reading checkpoint numbers", |mut c| {
                let top = top.clone();
                async move {
                    redis::cmd("ZSCORE")
                        .arg(top)
                        .arg("top")
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        Ok(score
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s.min(u32::MAX as f64) as u32)
            .unwrap_or(0))
    }
}
