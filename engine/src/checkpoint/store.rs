//! Checkpoint files on disk: `<name>.ckpt` (the state), `<name>.state.json` (a readable
//! summary) and `<name>.meta.json` (what listings show), written atomically (temporary file,
//! fsync, rename, fsync of the folder). The `.ckpt` is written first: it is the commit point;
//! the two JSON files are derived from it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CheckpointError;
use super::file::{
    Checkpoint, Compression, PLAIN_SCHEMA, Reason, SCHEMA_VERSION, Unreadable, decode_from,
    write_with,
};

/// `<name>.state.json`: the run's progress at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSummary {
    /// Schema of the checkpoint.
    pub schema_version: u32,
    /// The run.
    pub run_id: String,
    /// Completed task executions.
    pub steps: u64,
    /// Tasks that run next (a task that was running comes first).
    pub pending: Vec<String>,
    /// Executions per task.
    pub cycle_counts: BTreeMap<String, u32>,
    /// Tasks that have completed at least once.
    pub completed: Vec<String>,
}

/// `<name>.meta.json`: what `graflow checkpoints` and the studio list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Schema of the checkpoint.
    pub schema_version: u32,
    /// Path of the `.ckpt` file.
    pub path: PathBuf,
    /// The run.
    pub run_id: String,
    /// Number within the run.
    pub seq: u32,
    /// RFC 3339 time of writing.
    pub created_at: String,
    /// Why it was written.
    pub reason: Reason,
    /// The task that asked for it.
    pub task: Option<String>,
    /// Workflow name.
    pub workflow: String,
    /// Workflow file, when there is one.
    pub workflow_path: Option<String>,
    /// SHA-256 of the workflow file.
    pub workflow_hash: Option<String>,
    /// Completed task executions.
    pub steps: u64,
    /// Size of the `.ckpt` in bytes.
    pub size_bytes: u64,
    /// The payload's JSON length when it is stored compressed (`size_bytes` against it is
    /// the compression's gain); absent for a plain payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_bytes: Option<u64>,
    /// User metadata.
    pub metadata: Map<String, Value>,
}

/// A checkpoint that was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The `.ckpt` path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its payload's JSON length, when the payload is stored compressed.
    pub content_bytes: Option<u64>,
}

fn io(path: &Path, e: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// fsync of the folder. A crash leaves either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    replace(path, bytes, true)?;
    sync_dir(path)
}

/// Write through a temporary file and rename; `durable` fsyncs the file first.
fn replace(path: &Path, bytes: &[u8], durable: bool) -> Result<(), CheckpointError> {
    replace_with(path, durable, |f| f.write_all(bytes)).map(|_| ())
}

/// [`replace`] with the contents written by `write` into a buffered temporary file.
fn replace_with<T>(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>,
) -> Result<T, CheckpointError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let value = write(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| io(path, e))
}

/// Make renames in the folder of `path` durable.
fn sync_dir(path: &Path) -> Result<(), CheckpointError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    match File::open(dir) {
        Ok(d) => d.sync_all().map_err(|e| io(dir, e)),
        Err(_) => Ok(()),
    }
}

/// A file name made of safe characters.
fn safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if s.is_empty() { "workflow".into() } else { s }
}

/// The `.ckpt` path a checkpoint gets in `dir`.
pub fn path_for(dir: &Path, ckpt: &Checkpoint) -> PathBuf {
    path_for_parts(dir, &ckpt.workflow.name, &ckpt.run_id, ckpt.seq)
}

/// The `.ckpt` path of checkpoint `seq` of run `run_id` of `workflow` in `dir`.
pub fn path_for_parts(dir: &Path, workflow: &str, run_id: &str, seq: u32) -> PathBuf {
    // Run ids are checked before a run starts; this keeps any other id inside `dir` too.
    let run: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(crate::run::MAX_RUN_ID_LEN)
        .collect();
    dir.join(format!("{}-{run}-{seq:03}.ckpt", safe(workflow)))
}

fn sibling(ckpt_path: &Path, suffix: &str) -> PathBuf {
    let stem = ckpt_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("checkpoint");
    ckpt_path.with_file_name(format!("{stem}.{suffix}"))
}

/// Write the three files of `ckpt` into `dir` (created if missing).
pub fn save(dir: &Path, ckpt: &Checkpoint) -> Result<Saved, CheckpointError> {
    save_signed(dir, ckpt, None)
}

/// [`save`], the `.ckpt` signed with `key` when given.
pub fn save_signed(
    dir: &Path,
    ckpt: &Checkpoint,
    key: Option<&[u8]>,
) -> Result<Saved, CheckpointError> {
    save_with(dir, ckpt, key, Compression::default())
}

/// [`save_signed`], the payload compressed as `compression` says.
pub fn save_with(
    dir: &Path,
    ckpt: &Checkpoint,
    key: Option<&[u8]>,
    compression: Compression,
) -> Result<Saved, CheckpointError> {
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = path_for(dir, ckpt);
    // The .ckpt is the commit point and is fsynced; the two JSON files are derived from it
    // (a listing falls back to the .ckpt when they are missing), so one folder sync covers
    // all three renames. It is serialized straight into the file.
    let written = replace_with(&path, true, |f| write_with(f, ckpt, key, compression))?;
    let (size_bytes, content_bytes) = (written.bytes, written.content_bytes);
    let schema_version = if content_bytes.is_some() {
        SCHEMA_VERSION
    } else {
        PLAIN_SCHEMA
    };
    let snap = &ckpt.snapshot;
    let state = StateSummary {
        schema_version,
        run_id: ckpt.run_id.clone(),
        steps: snap.steps,
        pending: snap.pending(),
        cycle_counts: snap.cycles.clone(),
        completed: snap.results.keys().cloned().collect(),
    };
    let info = CheckpointInfo {
        schema_version,
        path: path.clone(),
        run_id: ckpt.run_id.clone(),
        seq: ckpt.seq,
        created_at: ckpt.created_at.clone(),
        reason: ckpt.reason,
        task: ckpt.task.clone(),
        workflow: ckpt.workflow.name.clone(),
        workflow_path: ckpt.workflow.path.clone(),
        workflow_hash: ckpt.workflow.hash.clone(),
        steps: snap.steps,
        size_bytes,
        content_bytes,
        metadata: ckpt.metadata.clone(),
    };
    replace(&sibling(&path, "state.json"), &pretty(&state), false)?;
    replace(&sibling(&path, "meta.json"), &pretty(&info), false)?;
    sync_dir(&path)?;
    Ok(Saved {
        path,
        size_bytes,
        content_bytes,
    })
}

fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// The `.ckpt` a user means by `path`: the `.ckpt` itself, its `.meta.json`/`.state.json`, or
/// the base name without extension.
pub fn resolve(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    for suffix in [".meta.json", ".state.json"] {
        if let Some(base) = s.strip_suffix(suffix) {
            return PathBuf::from(format!("{base}.ckpt"));
        }
    }
    if path.extension().is_some_and(|e| e == "ckpt") {
        path.to_path_buf()
    } else {
        PathBuf::from(format!("{s}.ckpt"))
    }
}

/// Read and validate a checkpoint.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    load_trusted(path, None).map(|(c, _)| c)
}

/// Read and validate a checkpoint; also say whether it is signed with `key`.
pub fn load_trusted(
    path: &Path,
    key: Option<&[u8]>,
) -> Result<(Checkpoint, bool), CheckpointError> {
    let path = resolve(path);
    let file = File::open(&path).map_err(|e| io(&path, e))?;
    // Parsed as it is read: the file's bytes are never all in memory with the channel's values.
    decode_from(file, key).map_err(|e| match e {
        Unreadable::Io(e) => io(&path, e),
        Unreadable::Refused(e) => e.at(&path),
    })
}

/// The checkpoints in `dir`, newest first (from their `.meta.json`; a `.ckpt` whose meta is
/// missing or unreadable is listed from the checkpoint itself when it loads).
pub fn list(dir: &Path) -> Vec<CheckpointInfo> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<CheckpointInfo> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .filter_map(|ckpt| {
            let meta = sibling(&ckpt, "meta.json");
            fs::read(&meta)
                .ok()
                .and_then(|b| serde_json::from_slice::<CheckpointInfo>(&b).ok())
                .or_else(|| info_from_checkpoint(&ckpt))
                .map(|mut info| {
                    info.path = ckpt.clone();
                    info
                })
        })
        .collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.seq.cmp(&a.seq)));
    out
}

/// The listing entry of a `.ckpt` whose `.meta.json` is missing or damaged.
fn info_from_checkpoint(path: &Path) -> Option<CheckpointInfo> {
    let ckpt = load(path).ok()?;
    let size_bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Some(CheckpointInfo {
        schema_version: SCHEMA_VERSION,
        path: path.to_path_buf(),
        run_id: ckpt.run_id,
        seq: ckpt.seq,
        created_at: ckpt.created_at,
        reason: ckpt.reason,
        task: ckpt.task,
        workflow: ckpt.workflow.name,
        workflow_path: ckpt.workflow.path,
        workflow_hash: ckpt.workflow.hash,
        steps: ckpt.snapshot.steps,
        size_bytes,
        content_bytes: None,
        metadata: ckpt.metadata,
    })
}

/// Delete all but the newest `keep` checkpoints of `workflow` in `dir`; returns the removed.
pub fn prune(dir: &Path, workflow: &str, keep: usize) -> Vec<PathBuf> {
    let listed = list(dir);
    beyond_count(&listed, workflow, keep)
        .into_iter()
        .map(|i| remove(i.clone()))
        .collect()
}

/// Delete the checkpoints of `workflow` in `dir` written more than `age` before `now`; the
/// newest is always kept, and so is one whose time cannot be read. Returns the removed.
pub fn prune_older_than(
    dir: &Path,
    workflow: &str,
    age: std::time::Duration,
    now: std::time::SystemTime,
) -> Vec<PathBuf> {
    let listed = list(dir);
    older_than(&listed, workflow, age, now)
        .into_iter()
        .map(|i| remove(i.clone()))
        .collect()
}

/// The retention rule by count, shared by every store: of `listed` (newest first, as
/// [`list`] gives), the checkpoints of `workflow` after its newest `keep`.
pub fn beyond_count<'a>(
    listed: &'a [CheckpointInfo],
    workflow: &str,
    keep: usize,
) -> Vec<&'a CheckpointInfo> {
    listed
        .iter()
        .filter(|i| i.workflow == workflow)
        .skip(keep)
        .collect()
}

/// The retention rule by age, shared by every store: the checkpoints of `workflow` in
/// `listed` written more than `age` before `now`, except the newest and any whose time
/// cannot be read.
pub fn older_than<'a>(
    listed: &'a [CheckpointInfo],
    workflow: &str,
    age: std::time::Duration,
    now: std::time::SystemTime,
) -> Vec<&'a CheckpointInfo> {
    let Some(cutoff) = now.checked_sub(age) else {
        return Vec::new();
    };
    let dated: Vec<(&CheckpointInfo, Option<std::time::SystemTime>)> = listed
        .iter()
        .filter(|i| i.workflow == workflow)
        .map(|i| (i, humantime::parse_rfc3339_weak(&i.created_at).ok()))
        .collect();
    let newest = dated.iter().filter_map(|(_, written)| *written).max();
    dated
        .into_iter()
        .filter(|(_, written)| written.is_some_and(|w| w < cutoff && Some(w) != newest))
        .map(|(info, _)| info)
        .collect()
}

/// The name a checkpoint is known by in every store: its file name without `.ckpt`
/// (`<workflow>-<run>-<seq>`), the same on every machine whatever the folder.
pub fn reference(info: &CheckpointInfo) -> String {
    reference_of(&info.workflow, &info.run_id, info.seq)
}

/// [`reference()`] from its parts.
pub fn reference_of(workflow: &str, run_id: &str, seq: u32) -> String {
    let path = path_for_parts(Path::new(""), workflow, run_id, seq);
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}

/// The listing entry of the `.ckpt` at `path`: its `.meta.json`, else the checkpoint itself.
pub fn info(path: &Path) -> Option<CheckpointInfo> {
    let path = resolve(path);
    fs::read(sibling(&path, "meta.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<CheckpointInfo>(&b).ok())
        .or_else(|| info_from_checkpoint(&path))
        .map(|mut info| {
            info.path = path.clone();
            info
        })
}

/// Delete a checkpoint with its side files; returns its path.
fn remove(info: CheckpointInfo) -> PathBuf {
    for p in [
        info.path.clone(),
        sibling(&info.path, "state.json"),
        sibling(&info.path, "meta.json"),
    ] {
        let _ = fs::remove_file(&p);
    }
    info.path
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::checkpoint::file::tests::sample;

    /// Save checkpoint `seq` of `workflow`, written `days_ago` days before `now`.
    fn saved(dir: &Path, workflow: &str, seq: u32, now: SystemTime, days_ago: u64) -> PathBuf {
        let mut ckpt = sample();
        ckpt.seq = seq;
        ckpt.workflow.name = workflow.into();
        let at = now - Duration::from_secs(days_ago * 86_400);
        ckpt.created_at = humantime::format_rfc3339_micros(at).to_string();
        save(dir, &ckpt).expect("saved").path
    }

    #[test]
    fn age_retention_deletes_only_old_checkpoints_of_the_workflow() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let old = saved(dir.path(), "etl", 1, now, 9);
        let older = saved(dir.path(), "etl", 2, now, 30);
        let recent = saved(dir.path(), "etl", 3, now, 2);
        let other = saved(dir.path(), "report", 4, now, 30);
        let mut removed = prune_older_than(dir.path(), "etl", Duration::from_secs(7 * 86_400), now);
        removed.sort();
        let mut expected = vec![old.clone(), older.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        for gone in [&old, &older] {
            assert!(!gone.exists(), "{}", gone.display());
            assert!(!sibling(gone, "meta.json").exists());
        }
        assert!(recent.exists() && other.exists());
    }

    #[test]
    fn age_retention_keeps_the_newest_and_unreadable_times() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let newest = saved(dir.path(), "etl", 1, now, 40);
        let removed = prune_older_than(dir.path(), "etl", Duration::from_secs(86_400), now);
        assert!(removed.is_empty() && newest.exists(), "{removed:?}");

        // A time that does not parse is kept: retention never guesses.
        let mut odd = sample();
        odd.seq = 0;
        odd.workflow.name = "etl".into();
        odd.created_at = "long ago".into();
        let odd = save(dir.path(), &odd).expect("saved").path;
        let removed = prune_older_than(dir.path(), "etl", Duration::from_secs(86_400), now);
        assert!(removed.is_empty() && odd.exists(), "{removed:?}");
        // An age beyond the clock's start deletes nothing.
        assert!(prune_older_than(dir.path(), "etl", Duration::MAX, now).is_empty());
    }
}
