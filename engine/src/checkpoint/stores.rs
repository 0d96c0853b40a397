//! Where checkpoints are kept: the [`CheckpointStore`] abstraction, with the files of a folder
//! ([`FileCheckpoints`]) and, behind the `redis` feature, the fleet's Redis
//! (`distributed::checkpoints::RedisCheckpoints`). Every store keeps
//! the exact bytes of the `.ckpt` file (header, CRC-32, compression, signature), so the same
//! validation runs whatever the store, and a listing entry ([`CheckpointInfo`]) beside them so
//! listings never fetch a checkpoint's state. A checkpoint is named the same in every store: its
//! [`reference`](super::store::reference()), `<workflow>-<run>-<seq>`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::CheckpointError;
use super::file::{Checkpoint, decode_trusted};
use super::store::{self, CheckpointInfo};

/// A checkpoint as a store lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCheckpoint {
    /// What the listing shows (workflow, run, time, size, reason…). Its `path` is where the
    /// machine that wrote it put the file.
    pub info: CheckpointInfo,
    /// The name it is asked for by: `<workflow>-<run>-<seq>`.
    pub reference: String,
    /// Where it lives in this store: a file's path, or a Redis key.
    pub location: String,
}

/// What [`CheckpointStore::list`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The checkpoints, newest first.
    pub entries: Vec<StoredCheckpoint>,
    /// Entries that could not be read, each with the key or file and why (they are not trusted
    /// and not listed).
    pub skipped: Vec<String>,
}

/// A place checkpoints are kept: written, listed, read back and pruned.
#[async_trait]
pub trait CheckpointStore: Send + Sync + Debug {
    /// A short name: `files`, `redis`.
    fn kind(&self) -> &'static str;

    /// Where it is, for messages (a folder, `Redis at redis://host:port`; never a password).
    fn describe(&self) -> String;

    /// Keep a checkpoint: `bytes` is the whole `.ckpt` (as written to its file), `info` its
    /// listing entry. A checkpoint with the same reference is replaced.
    async fn put(
        &self,
        info: &CheckpointInfo,
        bytes: Vec<u8>,
    ) -> Result<StoredCheckpoint, CheckpointError>;

    /// Every checkpoint kept, newest first, without fetching their state.
    async fn list(&self) -> Result<Listing, CheckpointError>;

    /// The stored bytes of checkpoint `reference`, not validated yet (see [`Self::load`]).
    async fn fetch(&self, reference: &str) -> Result<Vec<u8>, CheckpointError>;

    /// Fetch, validate and parse checkpoint `reference`; also say whether it is signed with
    /// `key`. Damaged or foreign bytes are refused with the error naming where they are.
    async fn load(
        &self,
        reference: &str,
        key: Option<&[u8]>,
    ) -> Result<(Checkpoint, bool), CheckpointError>;

    /// Apply retention to the checkpoints of `workflow`, with the rules of the files
    /// ([`store::beyond_count`], [`store::older_than`]); returns the references removed.
    async fn prune(
        &self,
        workflow: &str,
        keep_last: Option<usize>,
        keep_for: Option<Duration>,
        now: SystemTime,
    ) -> Result<Vec<String>, CheckpointError>;

    /// The highest checkpoint number kept for run `run_id` so far (0 when none), so a run
    /// resumed elsewhere numbers its checkpoints after those.
    async fn highest_seq(&self, run_id: &str) -> Result<u32, CheckpointError>;
}

/// The checkpoints of one folder (`<name>.ckpt`, `.state.json`, `.meta.json`), as a
/// [`CheckpointStore`]. Runs write their files with [`store::save_with`] directly (streamed,
/// never all in memory); this is the same folder seen through the common interface.
#[derive(Debug, Clone)]
pub struct FileCheckpoints {
    dir: PathBuf,
}

impl FileCheckpoints {
    /// The checkpoints in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileCheckpoints { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, reference: &str) -> PathBuf {
        self.dir.join(format!("{reference}.ckpt"))
    }

    fn entry(info: CheckpointInfo) -> StoredCheckpoint {
        StoredCheckpoint {
            reference: store::reference(&info),
            location: info.path.display().to_string(),
            info,
        }
    }
}

/// A reference names one file of the folder: no separators, no `..`.
fn plain_name(reference: &str) -> bool {
    !reference.is_empty()
        && !reference.contains(['/', '\\', '\0'])
        && reference != "."
        && reference != ".."
}

#[async_trait]
impl CheckpointStore for FileCheckpoints {
    fn kind(&self) -> &'static str {
        "files"
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    async fn put(
        &self,
        info: &CheckpointInfo,
        bytes: Vec<u8>,
    ) -> Result<StoredCheckpoint, CheckpointError> {
        let path = store::path_for_parts(&self.dir, &info.workflow, &info.run_id, info.seq);
        std::fs::create_dir_all(&self.dir).map_err(|e| CheckpointError::Io {
            path: self.dir.clone(),
            message: e.to_string(),
        })?;
        store::write_atomic(&path, &bytes)?;
        let mut info = info.clone();
        info.path = path.clone();
        info.size_bytes = bytes.len() as u64;
        let meta = serde_json::to_vec_pretty(&info)
            .map_err(|e| CheckpointError::Invalid(format!("cannot serialize: {e}")))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        store::write_atomic(&path.with_file_name(format!("{stem}.meta.json")), &meta)?;
        Ok(Self::entry(info))
    }

    async fn list(&self) -> Result<Listing, CheckpointError> {
        Ok(Listing {
            entries: store::list(&self.dir)
                .into_iter()
                .map(Self::entry)
                .collect(),
            skipped: Vec::new(),
        })
    }

    async fn fetch(&self, reference: &str) -> Result<Vec<u8>, CheckpointError> {
        if !plain_name(reference) {
            return Err(CheckpointError::NotFound {
                reference: reference.into(),
                store: self.describe(),
            });
        }
        let path = self.path(reference);
        std::fs::read(&path).map_err(|e| CheckpointError::Io {
            path,
            message: e.to_string(),
        })
    }

    async fn load(
        &self,
        reference: &str,
        key: Option<&[u8]>,
    ) -> Result<(Checkpoint, bool), CheckpointError> {
        if !plain_name(reference) {
            return Err(CheckpointError::NotFound {
                reference: reference.into(),
                store: self.describe(),
            });
        }
        store::load_trusted(&self.path(reference), key)
    }

    async fn prune(
        &self,
        workflow: &str,
        keep_last: Option<usize>,
        keep_for: Option<Duration>,
        now: SystemTime,
    ) -> Result<Vec<String>, CheckpointError> {
        let mut removed = Vec::new();
        if let Some(keep) = keep_last {
            removed.extend(store::prune(&self.dir, workflow, keep.max(1)));
        }
        if let Some(age) = keep_for {
            removed.extend(store::prune_older_than(&self.dir, workflow, age, now));
        }
        Ok(removed
            .iter()
            .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
            .collect())
    }

    async fn highest_seq(&self, run_id: &str) -> Result<u32, CheckpointError> {
        Ok(store::list(&self.dir)
            .iter()
            .filter(|i| i.run_id == run_id)
            .map(|i| i.seq)
            .max()
            .unwrap_or(0))
    }
}

/// Validate and parse the bytes of a checkpoint kept under `key` in `store_name`, off the
/// async threads; refusals name the key. `expected` is the run and number the listing entry
/// announced: a checkpoint of another run under this key is refused.
pub async fn decode_stored(
    bytes: Vec<u8>,
    key_name: &str,
    store_name: &str,
    expected: Option<(&str, u32)>,
    signing_key: Option<&[u8]>,
) -> Result<(Checkpoint, bool), CheckpointError> {
    let signing_key = signing_key.map(<[u8]>::to_vec);
    let decoded =
        tokio::task::spawn_blocking(move || decode_trusted(&bytes, signing_key.as_deref()))
            .await
            .map_err(|e| CheckpointError::Invalid(format!("the reader stopped: {e}")))
            .and_then(|r| r);
    let stored = |source: CheckpointError| CheckpointError::Stored {
        store: store_name.to_string(),
        key: key_name.to_string(),
        source: Box::new(source),
    };
    let (ckpt, signed) = decoded.map_err(stored)?;
    if let Some((run, seq)) = expected
        && (ckpt.run_id != run || ckpt.seq != seq)
    {
        return Err(stored(CheckpointError::Invalid(format!(
            "it holds checkpoint {} of run '{}', not checkpoint {seq} of run '{run}' as its listing entry says",
            ckpt.seq, ckpt.run_id
        ))));
    }
    Ok((ckpt, signed))
}
