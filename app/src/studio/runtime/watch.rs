//! Watching workflow files and the scripts they name: notify with a debouncer on the parent
//! folders (editors save by rename or by delete and re-create), reported as
//! `Msg::FilesChanged` through the app's bounded channel.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use crate::studio::app::Msg;

/// How long a burst of file events is gathered before it is reported.
pub const DEBOUNCE: Duration = Duration::from_millis(120);

/// The file watcher.
pub struct Watcher {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    flat: HashSet<PathBuf>,
    roots: Arc<Mutex<Vec<PathBuf>>>,
}

/// Whether a changed path is worth reporting: below its watched folder, no hidden folder,
/// no build output, no editor backup.
fn interesting(path: &Path, roots: &[PathBuf]) -> bool {
    let root = roots
        .iter()
        .filter(|r| path.starts_with(r))
        .max_by_key(|r| r.as_os_str().len());
    let rel = root.and_then(|r| path.strip_prefix(r).ok()).unwrap_or(path);
    !rel.components().any(|c| match c {
        Component::Normal(s) => {
            let s = s.to_string_lossy();
            (s.starts_with('.') && s.len() > 1) || s == "target" || s == "node_modules"
        }
        _ => false,
    }) && !path.to_string_lossy().ends_with('~')
}

impl Watcher {
    /// A watcher sending to `tx`.
    pub fn new(tx: mpsc::Sender<Msg>) -> Result<Watcher, String> {
        let roots: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
        let shared = roots.clone();
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let mut paths: Vec<PathBuf> = Vec::new();
                let roots = shared.lock().map(|r| r.clone()).unwrap_or_default();
                for e in events {
                    if matches!(e.kind, EventKind::Access(_)) {
                        continue;
                    }
                    for p in &e.paths {
                        if interesting(p, &roots) && !paths.contains(p) {
                            paths.push(p.clone());
                        }
                    }
                }
                if !paths.is_empty() {
                    let _ = tx.blocking_send(Msg::FilesChanged(paths));
                }
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let _ =
                    tx.blocking_send(Msg::Problem(format!("file watcher: {}", text.join("; "))));
            }
        };
        let debouncer = new_debouncer(DEBOUNCE, None, handler)
            .map_err(|e| format!("cannot watch files: {e}"))?;
        Ok(Watcher {
            debouncer,
            flat: HashSet::new(),
            roots,
        })
    }

    fn covered(&self, dir: &Path) -> bool {
        self.flat.contains(dir)
    }

    /// Watch a folder (not its subfolders: those holding workflows are watched as their
    /// files are found, so a large tree such as a build folder is never watched).
    pub fn watch_dir(&mut self, dir: &Path) -> Result<(), String> {
        if self.covered(dir) {
            return Ok(());
        }
        self.debouncer
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        self.flat.insert(dir.to_path_buf());
        self.add_root(dir);
        Ok(())
    }

    /// Watch the folder holding `file` (not its subfolders).
    pub fn watch_file(&mut self, file: &Path) -> Result<(), String> {
        match file.parent() {
            Some(dir) => self.watch_dir(dir),
            None => Ok(()),
        }
    }

    fn add_root(&self, dir: &Path) {
        if let Ok(mut r) = self.roots.lock() {
            r.push(dir.to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_build_folders_are_ignored() {
        let roots = [PathBuf::from("/tmp/.tmpX/w")];
        assert!(interesting(Path::new("/tmp/.tmpX/w/flows/etl.ron"), &roots));
        assert!(!interesting(
            Path::new("/tmp/.tmpX/w/.graflow/runs/x.json"),
            &roots
        ));
        assert!(!interesting(
            Path::new("/tmp/.tmpX/w/target/debug/x"),
            &roots
        ));
        assert!(!interesting(
            Path::new("/tmp/.tmpX/w/flows/etl.ron~"),
            &roots
        ));
    }
}
