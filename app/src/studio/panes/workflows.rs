//! The workflows pane as a component: the open workflows (files found under the given paths,
//! and workflows built in code), which is selected, the pane's scroll and its filter (`/`).
//! Rows show in file-path order (a file added while the studio runs takes its place among
//! the others, not the end), narrowed by the filter; entries keep their index in
//! [`WorkflowList::entries`] (runs and loads refer to it), only the order they show in lives
//! here. It also takes what the loader and the watcher report about the files.

use std::path::PathBuf;

use crate::studio::messages::{Effect, Failed, Loaded};
use crate::studio::model::{LoadState, WorkflowEntry};

/// The workflows and the pane's state.
#[derive(Debug, Default)]
pub struct WorkflowList {
    /// The workflows.
    pub entries: Vec<WorkflowEntry>,
    /// The selected workflow (index into `entries`).
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
    /// The filter (lower case): only names containing it are listed.
    pub filter: Option<String>,
}

/// What the workflows pane is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowsAction {
    /// Move the selection by this many rows.
    Move(i64),
    /// Filter the rows (`None`: all of them); the pane starts at its top.
    Filter(Option<String>),
    /// A click on this row of the pane (from its first row).
    Click(usize),
}

/// What the app should do after the workflows pane handled something.
#[derive(Debug, Clone)]
pub enum WorkflowsEffect {
    /// Select this workflow (the app resets what belongs to the one selected before).
    Select(usize),
    /// Something for the runtime.
    Run(Box<Effect>),
}

/// A file read again: what the app needs to know.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The entry's label (an error message about it is stale now).
    pub label: String,
    /// The entry is the one selected.
    pub selected: bool,
    /// Files to watch (scripts the workflow uses now).
    pub watch: Vec<PathBuf>,
}

impl WorkflowList {
    /// The selected workflow.
    pub fn entry(&self) -> Option<&WorkflowEntry> {
        self.entries.get(self.selected)
    }

    /// The selected workflow, to change.
    pub fn entry_mut(&mut self) -> Option<&mut WorkflowEntry> {
        self.entries.get_mut(self.selected)
    }

    /// The entries shown, in display order (indices into `entries`).
    pub fn visible(&self) -> Vec<usize> {
        let filter = self.filter.as_deref().filter(|f| !f.is_empty());
        let mut rows: Vec<usize> = (0..self.entries.len())
            .filter(|&i| {
                filter.is_none_or(|f| {
                    let e = &self.entries[i];
                    e.label().to_lowercase().contains(f) || e.name.to_lowercase().contains(f)
                })
            })
            .collect();
        // Files by path; workflows built in code (no path) first, in the order they came.
        rows.sort_by(|&a, &b| {
            let (ea, eb) = (&self.entries[a], &self.entries[b]);
            ea.path.cmp(&eb.path).then(a.cmp(&b))
        });
        rows
    }

    /// The selected workflow's row, when it is shown.
    pub fn selected_row(&self) -> Option<usize> {
        self.visible().iter().position(|&i| i == self.selected)
    }

    /// Do `action`.
    pub fn handle(&mut self, action: WorkflowsAction) -> Vec<WorkflowsEffect> {
        let rows = self.visible();
        let pick = match action {
            WorkflowsAction::Move(delta) => {
                if rows.is_empty() {
                    return Vec::new();
                }
                let cur = self.selected_row().map_or(-1, |r| r as i64);
                let next = if cur < 0 && delta < 0 {
                    rows.len() as i64 - 1
                } else {
                    (cur + delta).clamp(0, rows.len() as i64 - 1)
                };
                rows.get(next as usize).copied()
            }
            WorkflowsAction::Filter(text) => {
                self.filter = text.map(|t| t.to_lowercase()).filter(|t| !t.is_empty());
                self.offset = 0;
                match self.selected_row() {
                    None => self.visible().first().copied(),
                    Some(_) => None,
                }
            }
            WorkflowsAction::Click(row) => rows.get(self.offset + row).copied(),
        };
        pick.map(WorkflowsEffect::Select).into_iter().collect()
    }

    /// Select entry `i` (when there is one); returns whether it is another than before.
    pub fn select(&mut self, i: usize, height: usize) -> Option<bool> {
        if i >= self.entries.len() {
            return None;
        }
        let changed = i != self.selected;
        self.selected = i;
        self.keep_visible(height);
        Some(changed)
    }

    /// Scroll so the selected row is on screen in a pane showing `height` rows.
    pub fn keep_visible(&mut self, height: usize) {
        let Some(row) = self.selected_row() else {
            return;
        };
        if row < self.offset {
            self.offset = row;
        } else if row >= self.offset + height {
            self.offset = row + 1 - height;
        }
    }

    /// Workflow files found: new ones are added and read, and watched. The first files found
    /// select the top row; later ones keep the selection on screen.
    pub fn discovered(&mut self, paths: Vec<PathBuf>, height: usize) -> Vec<WorkflowsEffect> {
        let first_batch = self.entries.is_empty();
        let mut fx = Vec::new();
        let mut watch = Vec::new();
        for p in paths {
            if self.entries.iter().any(|e| e.path.as_ref() == Some(&p)) {
                continue;
            }
            let mut entry = WorkflowEntry::from_path(p.clone());
            entry.generation = 1;
            self.entries.push(entry);
            fx.push(WorkflowsEffect::Run(Box::new(Effect::Load {
                index: self.entries.len() - 1,
                path: p.clone(),
                generation: 1,
            })));
            watch.push(p);
        }
        if !watch.is_empty() {
            fx.push(WorkflowsEffect::Run(Box::new(Effect::Watch(watch))));
        }
        if first_batch && let Some(&top) = self.visible().first() {
            fx.push(WorkflowsEffect::Select(top));
        } else {
            self.keep_visible(height);
        }
        fx
    }

    /// Files changed: the workflows that use them are read again; unknown `.ron` files are
    /// looked at (they may be new workflows).
    pub fn files_changed(&mut self, paths: Vec<PathBuf>) -> Vec<Effect> {
        let mut fx = Vec::new();
        let mut unknown = Vec::new();
        for p in paths {
            let mut known = false;
            for (index, e) in self.entries.iter_mut().enumerate() {
                if e.depends_on(&p) {
                    known = true;
                    if let Some(path) = e.path.clone() {
                        e.generation += 1;
                        fx.push(Effect::Load {
                            index,
                            path,
                            generation: e.generation,
                        });
                    }
                }
            }
            if !known && p.extension().is_some_and(|x| x == "ron") {
                unknown.push(p);
            }
        }
        if !unknown.is_empty() {
            fx.push(Effect::Discover(unknown));
        }
        fx
    }

    /// A file was read (or not); `None` when the news is stale (the file changed since).
    pub fn loaded(
        &mut self,
        index: usize,
        generation: u64,
        result: Result<Loaded, Failed>,
    ) -> Option<Reloaded> {
        let e = self.entries.get_mut(index)?;
        if generation != e.generation {
            return None;
        }
        let label = e.label();
        let mut watch = Vec::new();
        match result {
            Ok(loaded) => {
                e.state = LoadState::Ready;
                e.diagnostics = loaded.warnings;
                e.setup = loaded.setup;
                if loaded.scripts != e.scripts {
                    watch.extend(loaded.scripts.iter().cloned());
                    e.scripts = loaded.scripts;
                }
                e.set_workflow(loaded.workflow);
            }
            Err(f) => {
                e.state = if f.missing {
                    LoadState::Deleted
                } else {
                    LoadState::Invalid
                };
                e.diagnostics = f.diagnostics;
            }
        }
        Some(Reloaded {
            label,
            selected: index == self.selected,
            watch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> (WorkflowList, Vec<WorkflowsEffect>) {
        let mut l = WorkflowList::default();
        let paths = names.iter().map(|n| PathBuf::from(format!("/w/{n}.ron")));
        let fx = l.discovered(paths.collect(), 5);
        (l, fx)
    }

    fn selects(fx: &[WorkflowsEffect]) -> Option<usize> {
        fx.iter().find_map(|f| match f {
            WorkflowsEffect::Select(i) => Some(*i),
            WorkflowsEffect::Run(_) => None,
        })
    }

    #[test]
    fn files_show_by_path_and_the_first_batch_selects_the_top() {
        let (mut l, fx) = list(&["zeta", "alpha", "mid"]);
        let loads = fx
            .iter()
            .filter(|f| matches!(f, WorkflowsEffect::Run(e) if matches!(**e, Effect::Load { .. })))
            .count();
        assert_eq!(loads, 3);
        assert_eq!(l.visible(), [1, 2, 0]);
        assert_eq!(selects(&fx), Some(1));
        // A file found later takes its place and selects nothing.
        let fx = l.discovered(vec![PathBuf::from("/w/beta.ron")], 5);
        assert_eq!(selects(&fx), None);
        assert_eq!(l.visible(), [1, 3, 2, 0]);
        assert!(
            l.discovered(vec![PathBuf::from("/w/beta.ron")], 5)
                .is_empty()
        );
    }

    #[test]
    fn moves_filters_and_clicks_pick_rows() {
        let (mut l, _) = list(&["alpha", "beta", "gamma"]);
        l.selected = 0;
        assert_eq!(selects(&l.handle(WorkflowsAction::Move(1))), Some(1));
        assert_eq!(selects(&l.handle(WorkflowsAction::Move(9))), Some(2));
        // The selected workflow filtered out: the first match is picked.
        let fx = l.handle(WorkflowsAction::Filter(Some("GAM".into())));
        assert_eq!(l.filter.as_deref(), Some("gam"));
        assert_eq!(selects(&fx), Some(2));
        assert!(l.handle(WorkflowsAction::Click(1)).is_empty(), "one row");
        l.handle(WorkflowsAction::Filter(None));
        assert_eq!(selects(&l.handle(WorkflowsAction::Click(1))), Some(1));
    }

    #[test]
    fn the_selection_stays_on_screen() {
        let names: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (mut l, _) = list(&names);
        assert_eq!(l.select(7, 3), Some(true));
        assert_eq!(l.offset, 5);
        assert_eq!(l.select(7, 3), Some(false));
        assert_eq!(l.select(1, 3), Some(true));
        assert_eq!(l.offset, 1);
        assert_eq!(l.select(99, 3), None);
    }

    #[test]
    fn stale_loads_are_dropped_and_changes_read_again() {
        let (mut l, _) = list(&["a"]);
        let failed = || Failed {
            diagnostics: Vec::new(),
            missing: true,
        };
        assert!(
            l.loaded(0, 7, Err(failed())).is_none(),
            "another generation"
        );
        assert!(l.loaded(3, 1, Err(failed())).is_none(), "no such entry");
        let r = l.loaded(0, 1, Err(failed()));
        assert!(r.is_some_and(|r| r.selected));
        assert_eq!(l.entries[0].state, LoadState::Deleted);
        let fx = l.files_changed(vec![PathBuf::from("/w/a.ron"), PathBuf::from("/w/new.ron")]);
        assert!(matches!(
            &fx[..],
            [Effect::Load { index: 0, generation: 2, .. }, Effect::Discover(p)] if p.len() == 1
        ));
    }
}
