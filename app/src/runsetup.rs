//! How runs are set up and resumed, shared by `graflow run`, `graflow resume` and the studio:
//! the feedback manager of a state dir, where a workflow's checkpoints go, and which workflow
//! a checkpoint resumes with (its file when unchanged; a changed file only when forced; the
//! copy saved in the checkpoint when the file is gone).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graflow_engine::checkpoint::{Checkpoint, WorkflowSource};
use graflow_engine::file::{self, LoadedWorkflow, sha256_hex};
use graflow_engine::handler::Runtimes;
use graflow_engine::hitl::{FeedbackBackend, FeedbackManager, FileBackend, Notifier};

/// The feedback setup of runs started in `state_dir`: requests as files in
/// `<state dir>/feedback` (so `graflow feedback`, `graflow serve` and the studio answer them),
/// answer links at `GRAFLOW_SERVE_URL` (default the local `graflow serve`).
pub fn feedback_manager(state_dir: &Path, notifiers: Vec<Arc<dyn Notifier>>) -> FeedbackManager {
    let mut manager = FeedbackManager::new(Arc::new(feedback_backend(state_dir)));
    manager.notifiers = notifiers;
    if let Ok(url) = std::env::var("GRAFLOW_SERVE_URL")
        && !url.trim().is_empty()
    {
        manager.answer_base_url = url;
    }
    manager
}

/// The Redis URL of the backend switch: `flag` (`--backend`), else `GRAFLOW_BACKEND`; `None`
/// for neither, or for `local`.
pub fn backend_url(flag: Option<&str>) -> Option<String> {
    let url = flag
        .map(str::to_string)
        .or_else(|| std::env::var("GRAFLOW_BACKEND").ok())?;
    let url = url.trim().to_string();
    (!url.is_empty() && !url.eq_ignore_ascii_case("local")).then_some(url)
}

/// Where feedback requests live under the backend switch: in the fleet's Redis when `url`
/// names one (so answers given anywhere reach runs on any machine), else as files in
/// `<state dir>/feedback`. `Err` names a bad URL or an unreachable Redis.
pub async fn feedback_store(
    state_dir: &Path,
    url: Option<&str>,
) -> Result<Arc<dyn FeedbackBackend>, String> {
    let Some(url) = url else {
        return Ok(Arc::new(feedback_backend(state_dir)));
    };
    let (link, keys, retention) = connect_backend(url).await?;
    Ok(Arc::new(graflow_engine::distributed::RedisFeedback::new(
        link, keys, retention,
    )))
}

/// The fleet's Redis that a `--backend` URL names, reached: its link, key layout and retention
/// (those of [`graflow_engine::distributed::FleetConfig::new`]). `Err` names a bad URL or an
/// unreachable Redis.
pub async fn connect_backend(
    url: &str,
) -> Result<
    (
        graflow_engine::distributed::conn::Link,
        graflow_engine::distributed::keys::Keys,
        std::time::Duration,
    ),
    String,
> {
    if !graflow_engine::distributed::is_redis_url(url) {
        return Err(format!(
            "--backend {url}: expected redis://host:port[/db], redis+cluster://host:port,host:port or `local`"
        ));
    }
    let config = graflow_engine::distributed::FleetConfig::new(url);
    let link =
        graflow_engine::distributed::conn::Link::connect(url, std::time::Duration::from_secs(5))
            .await?;
    Ok((
        link,
        graflow_engine::distributed::keys::Keys::new(config.prefix.clone()),
        config.retention,
    ))
}

/// The feedback requests and answers of `state_dir`.
pub fn feedback_backend(state_dir: &Path) -> FileBackend {
    FileBackend::new(state_dir.join("feedback"))
}

/// Where the checkpoints of `loaded` go: the file's `checkpoint_dir`, else
/// `<state dir>/checkpoints`.
pub fn checkpoint_dir(loaded: &LoadedWorkflow, state_dir: &Path) -> PathBuf {
    match &loaded.spec.checkpoint_dir {
        Some(d) => PathBuf::from(d),
        None => state_dir.join("checkpoints"),
    }
}

/// The state of the workflow file a checkpoint was written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowFile {
    /// The file is there and has the text the checkpoint recorded (or no hash was recorded).
    Unchanged(PathBuf),
    /// The file is there but its text changed since the checkpoint.
    Changed(PathBuf),
    /// The file is gone (or unreadable); the copy saved in the checkpoint will be used.
    Gone(Option<PathBuf>),
    /// The file is gone and the checkpoint holds no copy: it cannot resume.
    Missing(Option<PathBuf>),
}

impl WorkflowFile {
    /// A few words for listings: `unchanged`, `changed since`, `gone, saved copy`, `gone`.
    pub fn describe(&self) -> String {
        match self {
            WorkflowFile::Unchanged(p) => format!("{} (unchanged)", p.display()),
            WorkflowFile::Changed(p) => {
                format!("{} (changed since the checkpoint)", p.display())
            }
            WorkflowFile::Gone(Some(p)) => {
                format!("{} is gone; the saved copy will be used", p.display())
            }
            WorkflowFile::Gone(None) => "no file; the saved copy will be used".into(),
            WorkflowFile::Missing(Some(p)) => {
                format!("{} is gone and no copy was saved", p.display())
            }
            WorkflowFile::Missing(None) => "no file and no saved copy".into(),
        }
    }
}

/// Where the workflow of a checkpoint would come from, and its text (when readable).
fn locate(saved: &WorkflowSource) -> (WorkflowFile, Option<String>) {
    let recorded = saved.path.as_deref().map(PathBuf::from);
    let current = recorded
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    match (recorded, current) {
        (Some(p), Some(text)) => {
            let changed = saved
                .hash
                .as_deref()
                .is_some_and(|h| h != sha256_hex(&text));
            let state = if changed {
                WorkflowFile::Changed(p)
            } else {
                WorkflowFile::Unchanged(p)
            };
            (state, Some(text))
        }
        (recorded, _) if saved.source.is_some() => (WorkflowFile::Gone(recorded), None),
        (recorded, _) => (WorkflowFile::Missing(recorded), None),
    }
}

/// The key this state dir signs its checkpoints with (`<state dir>/checkpoint.key`, 32 random
/// bytes, readable by this user only), created on first use; `None` (with a warning) when it
/// can be neither read nor created. See `docs/checkpoints.md`, Trust.
pub fn checkpoint_key(state_dir: &Path) -> Option<Arc<[u8]>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("checkpoint.key");
    let read = |p: &Path| std::fs::read(p).ok().filter(|k| k.len() >= 32);
    if let Some(key) = read(&path) {
        return Some(Arc::from(key));
    }
    let created = std::fs::create_dir_all(state_dir).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let key = rand_key()?;
        f.write_all(&key)?;
        f.sync_all()
    });
    match created {
        Ok(()) => read(&path).map(Arc::from),
        // Another process created it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path).map(Arc::from),
        Err(e) => {
            tracing::warn!("checkpoints will not be signed: {}: {e}", path.display());
            None
        }
    }
}

fn rand_key() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// The state of the workflow file of a checkpoint (reads the file).
pub fn workflow_file(saved: &WorkflowSource) -> WorkflowFile {
    locate(saved).0
}

/// Why a checkpoint cannot resume (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeRefusal {
    /// The workflow file changed since the checkpoint; resuming needs a yes (`--force`).
    Changed(PathBuf),
    /// The file is gone and the checkpoint holds no copy of workflow `.0`.
    NoCopy(String),
    /// The workflow (file or saved copy) does not load.
    DoesNotLoad(String),
    /// The file is gone and the checkpoint was not signed by this state dir: its saved copy
    /// of the workflow is not trusted to run.
    UnsignedCopy(Option<PathBuf>),
}

impl std::fmt::Display for ResumeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResumeRefusal::Changed(p) => write!(
                f,
                "the workflow file {} changed since the checkpoint was written",
                p.display()
            ),
            ResumeRefusal::NoCopy(name) => write!(
                f,
                "the checkpoint holds no copy of workflow '{name}' and its file is not readable"
            ),
            ResumeRefusal::DoesNotLoad(e) => write!(f, "the workflow does not load:\n{e}"),
            ResumeRefusal::UnsignedCopy(p) => write!(
                f,
                "the workflow file{} is gone, and this checkpoint was not written under this \
                 state dir (it does not carry its signature), so the copy of the workflow it \
                 holds is not run: put the workflow file back, or resume with the state dir \
                 that wrote it",
                p.as_ref()
                    .map(|p| format!(" {}", p.display()))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Something worth telling about the workflow a checkpoint resumes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeNote {
    /// The file changed since the checkpoint and is used as it is now (forced).
    UsingChanged(PathBuf),
    /// The file is gone; the copy saved in the checkpoint is used.
    UsingSavedCopy(PathBuf),
}

/// The workflow a checkpoint resumes with, loaded.
pub struct ResumeWorkflow {
    /// The workflow.
    pub loaded: LoadedWorkflow,
    /// What the user should know about where it came from.
    pub note: Option<ResumeNote>,
}

/// Pick and load the workflow of `ckpt`: its file when unchanged; a changed file only when
/// `force`; the saved copy when the file is gone and the checkpoint is `signed` by this state
/// dir (the copy is code: a checkpoint from elsewhere must not bring its own).
pub fn workflow_for_resume(
    ckpt: &Checkpoint,
    force: bool,
    signed: bool,
    runtimes: &Runtimes,
) -> Result<ResumeWorkflow, ResumeRefusal> {
    let saved = &ckpt.workflow;
    let (state, text) = locate(saved);
    let (text, path, note) = match (state, text, &saved.source) {
        (WorkflowFile::Unchanged(p), Some(text), _) => (text, p, None),
        (WorkflowFile::Changed(p), Some(text), _) => {
            if !force {
                return Err(ResumeRefusal::Changed(p));
            }
            (text, p.clone(), Some(ResumeNote::UsingChanged(p)))
        }
        (WorkflowFile::Gone(recorded), _, Some(_)) if !signed => {
            return Err(ResumeRefusal::UnsignedCopy(recorded));
        }
        (WorkflowFile::Gone(recorded), _, Some(source)) => {
            let note = recorded.clone().map(ResumeNote::UsingSavedCopy);
            let path = recorded.unwrap_or_else(|| PathBuf::from(format!("{}.ron", saved.name)));
            (source.clone(), path, note)
        }
        _ => return Err(ResumeRefusal::NoCopy(saved.name.clone())),
    };
    let loaded = file::load_str(&text, &path, runtimes)
        .map_err(|e| ResumeRefusal::DoesNotLoad(e.to_string()))?;
    Ok(ResumeWorkflow { loaded, note })
}

/// Checkpoints above this size get a warning: `GRAFLOW_CHECKPOINT_WARN_MB` (default 50 MB).
pub fn checkpoint_warn_bytes() -> u64 {
    std::env::var("GRAFLOW_CHECKPOINT_WARN_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(50)
        .saturating_mul(1024 * 1024)
}

/// Why a checkpoint was written, with the task that asked: `reason (task)`, or the reason
/// alone (`graflow checkpoints` and the studio's checkpoint browser).
pub fn checkpoint_why(info: &graflow_engine::checkpoint::store::CheckpointInfo) -> String {
    let reason = serde_json::to_value(info.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match &info.task {
        Some(t) => format!("{reason} ({t})"),
        None => reason,
    }
}

/// `zstd: 40.0 MB of JSON, 12.3× smaller` for a checkpoint stored compressed (`None` for a
/// plain one): what `graflow checkpoints` and the studio's checkpoint browser say of it.
pub fn compression_note(
    info: &graflow_engine::checkpoint::store::CheckpointInfo,
) -> Option<String> {
    match info.content_bytes {
        Some(content) if info.size_bytes > 0 => Some(format!(
            "zstd: {} of JSON, {:.1}× smaller",
            human_bytes(content),
            content as f64 / info.size_bytes as f64
        )),
        _ => None,
    }
}

/// A size in bytes for people (`812 B`, `1.4 KB`, `3.0 MB`).
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: Option<&Path>, text: &str, with_copy: bool) -> WorkflowSource {
        WorkflowSource {
            name: "w".into(),
            path: path.map(|p| p.display().to_string()),
            hash: Some(sha256_hex(text)),
            source: with_copy.then(|| text.to_string()),
        }
    }

    #[test]
    fn the_file_state_follows_the_rule() {
        let dir = std::env::temp_dir().join(format!("graflow-runsetup-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("w.ron");
        let text = "Workflow(name: \"w\", flow: \"a\", tasks: {\"a\": Task(run: Value(1))})";
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let saved = source(Some(&file), text, true);
        assert_eq!(workflow_file(&saved), WorkflowFile::Unchanged(file.clone()));
        std::fs::write(&file, format!("{text}\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(workflow_file(&saved), WorkflowFile::Changed(file.clone()));
        let _ = std::fs::remove_file(&file);
        assert_eq!(
            workflow_file(&saved),
            WorkflowFile::Gone(Some(file.clone()))
        );
        let bare = source(Some(&file), text, false);
        assert_eq!(workflow_file(&bare), WorkflowFile::Missing(Some(file)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
