//! Checkpoints: the whole state of a run written to disk so it can resume after a crash or a
//! pause and end exactly as an uninterrupted run would. [`snapshot`] is the state as data,
//! [`file`](mod@file) the versioned, checksummed `.ckpt` format, [`store`] the files on disk,
//! [`json`] the fast writer of big channels; `read` parses a payload as it is read;
//! [`stores`] the [`CheckpointStore`] abstraction (files, and the fleet's Redis in
//! `distributed::checkpoints`).

pub mod file;
pub mod json;
mod read;
pub mod snapshot;
pub mod store;
pub mod stores;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use file::{
    Checkpoint, Compression, DEFAULT_COMPRESS_ABOVE, Reason, SCHEMA_VERSION, WorkflowSource,
};
pub use snapshot::RunSnapshot;
pub use store::{CheckpointInfo, Saved, StateSummary};
pub use stores::{CheckpointStore, FileCheckpoints, Listing, StoredCheckpoint};

/// Where and how a run writes its checkpoints.
#[derive(Debug, Clone, Default)]
pub struct CheckpointConfig {
    /// The folder.
    pub dir: PathBuf,
    /// The workflow (name, file, hash, RON text) recorded in every checkpoint.
    pub workflow: WorkflowSource,
    /// Keep only this many checkpoints of the workflow in the folder (newest first).
    pub keep_last: Option<usize>,
    /// Delete the workflow's checkpoints older than this (the newest is always kept).
    pub keep_for: Option<std::time::Duration>,
    /// When payloads are compressed (by default, above [`DEFAULT_COMPRESS_ABOVE`]).
    pub compression: Compression,
    /// Sign checkpoints with this key (the state dir's; see `docs/checkpoints.md`, Trust).
    pub signing_key: Option<std::sync::Arc<[u8]>>,
    /// A second store every checkpoint is also kept in once its file is written (the fleet's
    /// Redis, so any machine can resume the run); a failure there is a warning, the file
    /// stays. The same retention (`keep_last`, `keep_for`) applies in it.
    pub mirror: Option<std::sync::Arc<dyn CheckpointStore>>,
}

/// A checkpoint could not be written, read or used.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's message.
        message: String,
    },
    /// The file has no checkpoint header.
    #[error("not a graflow checkpoint (no valid header)")]
    NotACheckpoint,
    /// The file ends early.
    #[error("truncated: the header announces {expected} payload bytes but the file holds {found}")]
    Truncated {
        /// Announced.
        expected: usize,
        /// Present.
        found: usize,
    },
    /// The file holds more than its header announces (something was appended to it).
    #[error(
        "too long: the header announces {expected} payload bytes but the file holds {found} (bytes were added after the checkpoint was written)"
    )]
    TooLong {
        /// Announced.
        expected: usize,
        /// Present.
        found: usize,
    },
    /// The payload does not match its checksum.
    #[error("corrupted: CRC-32 {found} does not match the recorded {expected}")]
    Corrupted {
        /// Recorded.
        expected: String,
        /// Computed.
        found: String,
    },
    /// Written by a newer schema.
    #[error(
        "written with checkpoint schema {found}; this graflow reads up to schema {supported} — upgrade graflow"
    )]
    NewerSchema {
        /// In the file.
        found: u32,
        /// Supported here.
        supported: u32,
    },
    /// Anything else wrong with the content.
    #[error("invalid checkpoint: {0}")]
    Invalid(String),
    /// The same error, with the file it is about.
    #[error("{}: {source}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// The error.
        source: Box<CheckpointError>,
    },
    /// A checkpoint was asked for but the run has no checkpoint folder.
    #[error("checkpoints are not configured for this run")]
    NotConfigured,
    /// The run ended or was cancelled before the checkpoint could be taken.
    #[error("the run is no longer running")]
    NotRunning,
    /// The checkpoint is well formed but this workflow cannot continue from it: it names a
    /// task the workflow does not have, a task added at run time cannot be rebuilt, or its
    /// run id is not one. The message says which.
    #[error("{0}")]
    CannotResume(String),
    /// The same error, about an entry of a checkpoint store that is not a file (a Redis key).
    #[error("{store} key {key}: {source}")]
    Stored {
        /// The store (`Redis at redis://host:port`).
        store: String,
        /// The key.
        key: String,
        /// The error.
        source: Box<CheckpointError>,
    },
    /// The checkpoint is larger than the store keeps.
    #[error(
        "the checkpoint is {bytes} bytes, above the {limit} bytes a checkpoint kept in {store} may have"
    )]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The store's limit.
        limit: u64,
        /// The store.
        store: String,
    },
    /// No checkpoint by this name in the store.
    #[error("no checkpoint '{reference}' in {store}")]
    NotFound {
        /// The name asked for.
        reference: String,
        /// The store.
        store: String,
    },
    /// The store could not be reached or refused a request; the message says which.
    #[error("{0}")]
    Unavailable(String),
    /// Where the task runs, it cannot write a checkpoint now (a fleet worker's task: the
    /// coordinator writes the run's checkpoints). The message says what to do instead.
    #[error("{0}")]
    Unsupported(String),
}

impl CheckpointError {
    /// Attach the file this error is about (once).
    pub fn at(self, path: &Path) -> CheckpointError {
        match self {
            e @ (CheckpointError::Io { .. }
            | CheckpointError::At { .. }
            | CheckpointError::Stored { .. }) => e,
            e => CheckpointError::At {
                path: path.to_path_buf(),
                source: Box::new(e),
            },
        }
    }
}
