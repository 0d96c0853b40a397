//! Finding workflow files under the given paths and loading them, on blocking threads.

use std::path::{Path, PathBuf};

use graflow_engine::file::spec::{RunSpec, ScriptSpec};
use graflow_engine::file::{Diagnostic, Severity, load_file};
use graflow_engine::handler::Runtimes;

use crate::studio::app::{Failed, Loaded};
use crate::studio::model::RunSetup;

/// Folders deeper than this under a given folder are not searched.
const MAX_DEPTH: usize = 6;
/// Files bigger than this are not taken for workflows when searching folders.
const MAX_PROBE_BYTES: u64 = 4 * 1024 * 1024;

/// Whether RON text looks like a workflow (it has a flow), as opposed to a theme or config.
pub fn looks_like_workflow(text: &str) -> bool {
    text.contains("flow") && !text.trim_start().starts_with("Theme(")
}

/// Workflow files at `paths`: a file given by name is always taken (`explicit`) or taken when
/// it looks like a workflow; folders are searched for `*.ron` files that look like workflows.
/// Returns absolute paths, sorted, without duplicates.
pub fn discover(paths: &[PathBuf], explicit: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        let p = absolute(p);
        if p.is_dir() {
            walk(&p, 0, &mut out);
        } else if p.is_file() && (explicit || probe(&p)) {
            out.push(p);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An absolute form of a path (canonical when it exists).
pub fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        }
    })
}

fn probe(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "ron")
        && std::fs::metadata(p).is_ok_and(|m| m.len() <= MAX_PROBE_BYTES)
        && std::fs::read_to_string(p).is_ok_and(|t| looks_like_workflow(&t))
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" || name == "node_modules" || name == "themes" {
            continue;
        }
        if p.is_dir() {
            walk(&p, depth + 1, out);
        } else if probe(&p) {
            out.push(p);
        }
    }
}

/// Load one workflow file; its runs keep checkpoints and feedback under `state_dir`.
pub fn load(path: &Path, runtimes: &Runtimes, state_dir: &Path) -> Result<Loaded, Failed> {
    if !path.exists() {
        return Err(Failed {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: "the file was deleted".into(),
                hint: Some("restore it, or save it again from your editor".into()),
            }],
            missing: true,
        });
    }
    match load_file(path, runtimes) {
        Ok(lw) => {
            let base = path.parent().unwrap_or(Path::new("."));
            let scripts = lw
                .spec
                .tasks
                .values()
                .filter_map(|t| match &t.run {
                    RunSpec::Script(ScriptSpec::File { file }) => Some(absolute(&base.join(file))),
                    _ => None,
                })
                .collect();
            let checkpoint_dir = crate::runsetup::checkpoint_dir(&lw, state_dir);
            let mut checkpoints = lw.checkpoint_config(checkpoint_dir, None);
            checkpoints.signing_key = crate::runsetup::checkpoint_key(state_dir);
            let setup = RunSetup {
                checkpoints,
                notifiers: lw.notifiers(),
            };
            Ok(Loaded {
                workflow: lw.workflow.clone(),
                warnings: lw.warnings.clone(),
                scripts,
                setup: Some(setup),
            })
        }
        Err(e) => Err(Failed {
            diagnostics: e.diagnostics,
            missing: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_workflows_and_skips_the_rest() {
        let dir = std::env::temp_dir().join(format!("graflow-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sub = dir.join("more");
        let hidden = dir.join(".graflow");
        for d in [&sub, &hidden] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        let write = |p: PathBuf, t: &str| std::fs::write(p, t).unwrap_or_else(|e| panic!("{e}"));
        write(
            dir.join("a.ron"),
            "Workflow(name: \"a\", flow: \"x\", tasks: {})",
        );
        write(sub.join("b.ron"), "(name: \"b\", flow: \"y\", tasks: {})");
        write(dir.join("theme.ron"), "Theme(fg: \"red\")");
        write(dir.join("notes.txt"), "flow");
        write(hidden.join("c.ron"), "Workflow(flow: \"z\")");
        let found = discover(std::slice::from_ref(&dir), true);
        let names: Vec<String> = found
            .iter()
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(names, ["a.ron", "b.ron"]);
        assert_eq!(discover(&[dir.join("notes.txt")], true).len(), 1);
        assert!(discover(&[dir.join("notes.txt")], false).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_says_so() {
        let e = load(
            Path::new("/nonexistent/flow.ron"),
            &Runtimes::default(),
            Path::new(".graflow"),
        )
        .err();
        assert!(e.is_some_and(|f| f.missing && f.diagnostics[0].message.contains("deleted")));
    }
}
