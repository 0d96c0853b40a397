//! The mouse on the shell: a click focuses the pane under it and selects what is there (the
//! same rows and offsets the drawing uses, from [`areas`](super::areas)), and the wheel
//! scrolls the pane under it (the inbox's and the browser's lists on their screens).

use super::app::{App, Pane};
use super::areas::screen_areas;
use super::panes::graph::GraphAction;
use super::panes::history::HistoryAction;
use super::panes::workflows::WorkflowsAction;
use super::screens::Screen;
use super::screens::inbox::InboxAction;

impl App {
    /// The wheel at a cell: the pane there scrolls by `d` rows (keeping the focus unless a
    /// pane fills the screen); other screens scroll their list.
    pub(crate) fn scroll_at(&mut self, x: u16, y: u16, d: i32) {
        if self.showing != Screen::Main {
            return self.move_by(d as i64);
        }
        if let Some(p) = self.areas().pane_at(x, y) {
            let saved = self.focus;
            self.focus = p;
            self.move_by(d as i64);
            if !self.zoomed {
                self.focus = saved;
            }
        }
    }

    /// A click: on the main screen it focuses the pane under it and selects the row (or
    /// node) there.
    pub(crate) fn click(&mut self, x: u16, y: u16) {
        if self.showing != Screen::Main {
            return self.click_screen(x, y);
        }
        let areas = self.areas();
        let Some(pane) = areas.pane_at(x, y) else {
            return;
        };
        self.focus = pane;
        let Some(r) = areas.of(pane) else {
            return;
        };
        let row = y.saturating_sub(r.y + 1) as usize;
        match pane {
            Pane::Workflows => {
                if y > r.y {
                    self.on_workflows(WorkflowsAction::Click(row));
                }
            }
            Pane::History => {
                let height = r.height.saturating_sub(2) as usize;
                if y > r.y {
                    self.history.handle(HistoryAction::Click { row, height });
                }
            }
            Pane::Graph => self.on_graph(GraphAction::Click { x, y, area: r }),
            Pane::Inspector => {}
        }
    }

    /// A click on the inbox's or the browser's list selects the row under it (the same
    /// rows and offset the drawing uses).
    fn click_screen(&mut self, x: u16, y: u16) {
        let inbox = self.showing == Screen::Inbox;
        let s = screen_areas(self.screen.0, self.screen.1, inbox);
        let Some(l) = s.list.filter(|l| l.contains((x, y).into())) else {
            return;
        };
        let header = if inbox { 0 } else { 1 };
        let rows = (l.height.saturating_sub(2) as usize).saturating_sub(header);
        let Some(row) = (y.saturating_sub(l.y + 1) as usize).checked_sub(header) else {
            return;
        };
        if y == l.y || row >= rows {
            return;
        }
        if inbox {
            self.on_inbox_action(InboxAction::Click { row, height: rows });
        } else {
            let fx = self.checkpoints.click(row, rows);
            self.effects.extend(fx);
        }
    }
}
