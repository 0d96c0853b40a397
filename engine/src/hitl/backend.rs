//! Where feedback requests and answers live. [`FeedbackBackend`] is the trait (a Redis
//! backend with pub/sub wake-up fits it); [`FileBackend`] keeps them as JSON files in the
//! state dir, so `graflow run`, `graflow serve`, `graflow feedback` and the studio started in
//! the same folder see the same requests.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use thiserror::Error;

use super::types::{Answer, FeedbackRequest, FeedbackResponse, FeedbackStatus};

/// A feedback operation failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FeedbackError {
    /// No request has this id.
    #[error("feedback request '{0}' not found")]
    NotFound(String),
    /// The request was answered or cancelled already.
    #[error("feedback request '{id}' is {status}, not pending")]
    NotPending {
        /// The request.
        id: String,
        /// Its status.
        status: String,
    },
    /// The answer does not fit the request.
    #[error("{0}")]
    Invalid(String),
    /// The request was cancelled while the task waited.
    #[error("feedback request '{0}' was cancelled")]
    Cancelled(String),
    /// The wait ran out and the run could not pause (no checkpoint folder).
    #[error("feedback request '{id}' got no answer within {secs} s")]
    Timeout {
        /// The request.
        id: String,
        /// The wait.
        secs: f64,
    },
    /// The run paused (checkpointed) waiting for this request.
    #[error("the run paused waiting for feedback request '{0}'")]
    Paused(String),
    /// Human feedback is not set up for this run.
    #[error("human feedback is not configured for this run")]
    NotConfigured,
    /// The storage failed.
    #[error("feedback storage: {0}")]
    Backend(String),
}

/// Stores requests and answers.
#[async_trait]
pub trait FeedbackBackend: Send + Sync {
    /// A short name: `files`, `redis`.
    fn kind(&self) -> &'static str;
    /// Store a new request; if one with the same id exists, return it unchanged.
    async fn create(&self, request: FeedbackRequest) -> Result<FeedbackRequest, FeedbackError>;
    /// A request and its answer.
    async fn get(
        &self,
        id: &str,
    ) -> Result<Option<(FeedbackRequest, Option<FeedbackResponse>)>, FeedbackError>;
    /// Requests, oldest first; `pending_only` hides answered and cancelled ones.
    async fn list(
        &self,
        run_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FeedbackRequest>, FeedbackError>;
    /// Answer a pending request (checked against it); the first answer wins.
    async fn respond(&self, id: &str, answer: Answer) -> Result<FeedbackResponse, FeedbackError>;
    /// Withdraw a pending request.
    async fn cancel(&self, id: &str) -> Result<FeedbackRequest, FeedbackError>;
    /// Rewrite a request's bookkeeping (timeout time, checkpoint).
    async fn update(&self, request: &FeedbackRequest) -> Result<(), FeedbackError>;
    /// Wait up to `timeout` for the answer: `Ok(None)` when none came, `Err(Cancelled)` when
    /// the request was cancelled meanwhile.
    async fn wait(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<FeedbackResponse>, FeedbackError>;
}

/// Requests and answers as JSON files: `<dir>/requests/<id>.json`, `<dir>/responses/<id>.json`.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
    poll: Duration,
}

fn backend(e: impl std::fmt::Display) -> FeedbackError {
    FeedbackError::Backend(e.to_string())
}

/// Ids are file names and URL segments: letters, digits, `-`, `_`, `.` only.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// The store's lock, released when dropped (closing the file releases the `flock`).
struct StoreLock {
    _file: fs::File,
}

/// A temporary file name in `dir` used by one write only.
fn temp_name(dir: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(
        ".tmp-{}-{n}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

/// Create `path` (it must not exist) with `bytes`, flushed to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Make the renames and links in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), FeedbackError> {
    match fs::File::open(dir) {
        Ok(d) => d.sync_all().map_err(backend),
        Err(_) => Ok(()),
    }
}

impl FileBackend {
    /// Files under `dir` (usually `<state dir>/feedback`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileBackend {
            dir: dir.into(),
            poll: Duration::from_millis(20),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn request_path(&self, id: &str) -> PathBuf {
        self.dir.join("requests").join(format!("{id}.json"))
    }

    fn response_path(&self, id: &str) -> PathBuf {
        self.dir.join("responses").join(format!("{id}.json"))
    }

    fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, FeedbackError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| backend(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(format!("{}: {e}", path.display()))),
        }
    }

    /// Write through a temporary file of its own (fsynced), then rename and sync the
    /// folder: readers never see half a file, concurrent writers never share a temporary,
    /// and once this returns the file survives a crash or a power loss.
    fn write(path: &Path, value: &impl serde::Serialize) -> Result<(), FeedbackError> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir).map_err(backend)?;
        let bytes = serde_json::to_vec_pretty(value).map_err(backend)?;
        let tmp = temp_name(dir);
        let result = write_synced(&tmp, &bytes).and_then(|()| fs::rename(&tmp, path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(backend)?;
        sync_dir(dir)
    }

    /// Publish a complete, durable file only if none exists (the first answer wins).
    fn write_new(path: &Path, value: &impl serde::Serialize) -> Result<bool, FeedbackError> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir).map_err(backend)?;
        let bytes = serde_json::to_vec_pretty(value).map_err(backend)?;
        let tmp = temp_name(dir);
        if let Err(e) = write_synced(&tmp, &bytes) {
            let _ = fs::remove_file(&tmp);
            return Err(backend(e));
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// Hold the store's lock (an exclusive `flock` on `<dir>/.lock`, shared by every process
    /// using the folder) while deciding: an answer and a cancel never both succeed.
    fn lock(&self) -> Result<StoreLock, FeedbackError> {
        fs::create_dir_all(&self.dir).map_err(backend)?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))
            .map_err(backend)?;
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is touched.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(StoreLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(backend(format!("locking the feedback store: {e}")));
            }
        }
    }

    fn get_sync(
        &self,
        id: &str,
    ) -> Result<Option<(FeedbackRequest, Option<FeedbackResponse>)>, FeedbackError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let Some(mut request) = Self::read::<FeedbackRequest>(&self.request_path(id))? else {
            return Ok(None);
        };
        let response = Self::read::<FeedbackResponse>(&self.response_path(id))?;
        // The answer file is the truth: a request with one is answered, whatever its file says.
        if response.is_some() {
            request.status = FeedbackStatus::Answered;
        }
        Ok(Some((request, response)))
    }
}

fn status_name(s: FeedbackStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[async_trait]
impl FeedbackBackend for FileBackend {
    fn kind(&self) -> &'static str {
        "files"
    }

    async fn create(&self, request: FeedbackRequest) -> Result<FeedbackRequest, FeedbackError> {
        if !valid_id(&request.id) {
            return Err(FeedbackError::Invalid(format!(
                "'{}' is not a valid feedback id",
                request.id
            )));
        }
        let _lock = self.lock()?;
        if let Some(existing) = Self::read::<FeedbackRequest>(&self.request_path(&request.id))? {
            return Ok(existing);
        }
        Self::write(&self.request_path(&request.id), &request)?;
        Ok(request)
    }

    async fn get(
        &self,
        id: &str,
    ) -> Result<Option<(FeedbackRequest, Option<FeedbackResponse>)>, FeedbackError> {
        self.get_sync(id)
    }

    async fn list(
        &self,
        run_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FeedbackRequest>, FeedbackError> {
        let Ok(entries) = fs::read_dir(self.dir.join("requests")) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<FeedbackRequest> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| Self::read::<FeedbackRequest>(&p).ok().flatten())
            .map(|mut r| {
                if r.status == FeedbackStatus::Pending && self.response_path(&r.id).exists() {
                    r.status = FeedbackStatus::Answered;
                }
                r
            })
            .filter(|r| run_id.is_none_or(|id| r.run_id == id))
            .filter(|r| !pending_only || r.status == FeedbackStatus::Pending)
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn respond(&self, id: &str, answer: Answer) -> Result<FeedbackResponse, FeedbackError> {
        let _lock = self.lock()?;
        let Some((mut request, existing)) = self.get_sync(id)? else {
            return Err(FeedbackError::NotFound(id.to_string()));
        };
        if existing.is_some() || request.status != FeedbackStatus::Pending {
            let status = if existing.is_some() {
                FeedbackStatus::Answered
            } else {
                request.status
            };
            return Err(FeedbackError::NotPending {
                id: id.to_string(),
                status: status_name(status),
            });
        }
        let response = request.accept(answer, now())?;
        if !Self::write_new(&self.response_path(id), &response)? {
            return Err(FeedbackError::NotPending {
                id: id.to_string(),
                status: "answered".into(),
            });
        }
        request.status = FeedbackStatus::Answered;
        Self::write(&self.request_path(id), &request)?;
        Ok(response)
    }

    async fn cancel(&self, id: &str) -> Result<FeedbackRequest, FeedbackError> {
        let _lock = self.lock()?;
        let Some((mut request, existing)) = self.get_sync(id)? else {
            return Err(FeedbackError::NotFound(id.to_string()));
        };
        if existing.is_some() || request.status != FeedbackStatus::Pending {
            let status = if existing.is_some() {
                FeedbackStatus::Answered
            } else {
                request.status
            };
            return Err(FeedbackError::NotPending {
                id: id.to_string(),
                status: status_name(status),
            });
        }
        request.status = FeedbackStatus::Cancelled;
        Self::write(&self.request_path(id), &request)?;
        Ok(request)
    }

    async fn update(&self, request: &FeedbackRequest) -> Result<(), FeedbackError> {
        if !valid_id(&request.id) {
            return Err(FeedbackError::NotFound(request.id.clone()));
        }
        // Only the bookkeeping changes: an answer or a cancel that landed meanwhile stays.
        let _lock = self.lock()?;
        let Some((mut current, _)) = self.get_sync(&request.id)? else {
            return Err(FeedbackError::NotFound(request.id.clone()));
        };
        current.timed_out_at = request.timed_out_at.clone();
        current.checkpoint = request.checkpoint.clone();
        Self::write(&self.request_path(&request.id), &current)
    }

    async fn wait(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<FeedbackResponse>, FeedbackError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            match self.get_sync(id)? {
                None => return Err(FeedbackError::NotFound(id.to_string())),
                Some((_, Some(response))) => return Ok(Some(response)),
                Some((r, None)) if r.status == FeedbackStatus::Cancelled => {
                    return Err(FeedbackError::Cancelled(id.to_string()));
                }
                Some(_) => {}
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if now >= d => return Ok(None),
                Some(d) => d - now,
                // Too far away to represent: wait in polls until an answer comes.
                None => self.poll,
            };
            tokio::time::sleep(self.poll.min(left)).await;
        }
    }
}
