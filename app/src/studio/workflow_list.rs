//! The workflows pane's rows: the entries in file-path order (a file added while the studio
//! runs takes its place among the others, not the end), narrowed by the pane's filter (`/`).
//! Entries keep their index in [`App::entries`] (runs and loads refer to it); only the order
//! they are shown in lives here.

use super::app::App;

impl App {
    /// The entries shown in the workflows pane, in display order (indices into `entries`).
    pub fn visible_workflows(&self) -> Vec<usize> {
        let filter = self.workflow_filter.as_deref().filter(|f| !f.is_empty());
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

    /// The selected workflow's row in the pane, when it is shown.
    pub fn selected_workflow_row(&self) -> Option<usize> {
        self.visible_workflows()
            .iter()
            .position(|&i| i == self.selected)
    }

    /// Move the workflows selection by `delta` rows of the pane.
    pub(crate) fn move_workflows(&mut self, delta: i64) {
        let rows = self.visible_workflows();
        if rows.is_empty() {
            return;
        }
        let cur = self.selected_workflow_row().map_or(-1, |r| r as i64);
        let next = if cur < 0 && delta < 0 {
            rows.len() as i64 - 1
        } else {
            (cur + delta).clamp(0, rows.len() as i64 - 1)
        };
        self.select_workflow(rows[next as usize]);
    }

    /// Apply the filter being typed (or cleared): the selection moves to the first match
    /// when the selected workflow is filtered out.
    pub(crate) fn set_workflow_filter(&mut self, text: Option<String>) {
        self.workflow_filter = text.map(|t| t.to_lowercase()).filter(|t| !t.is_empty());
        self.workflows_offset = 0;
        if self.selected_workflow_row().is_none()
            && let Some(&first) = self.visible_workflows().first()
        {
            self.select_workflow(first);
        }
        self.keep_workflow_visible();
    }

    /// Scroll the workflows pane so the selected row is on screen.
    pub(crate) fn keep_workflow_visible(&mut self) {
        let h = self
            .areas()
            .workflows
            .map_or(5, |r| r.height.saturating_sub(2).max(1) as usize);
        let Some(row) = self.selected_workflow_row() else {
            return;
        };
        if row < self.workflows_offset {
            self.workflows_offset = row;
        } else if row >= self.workflows_offset + h {
            self.workflows_offset = row + 1 - h;
        }
    }
}
