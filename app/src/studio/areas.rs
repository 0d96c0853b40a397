//! Where each pane goes on a screen of a given size. Pure geometry, shared by drawing and by
//! mouse hit-testing and scrolling in `update`, so both always agree.

use ratatui::layout::Rect;

use crate::studio::app::Pane;

/// The panes' rectangles (absent when the screen has no room for them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    /// Workflows list.
    pub workflows: Option<Rect>,
    /// Run history.
    pub history: Option<Rect>,
    /// Graph (list, canvas or timeline).
    pub graph: Option<Rect>,
    /// Inspector (task, channel, events).
    pub inspector: Option<Rect>,
    /// The status line.
    pub status: Option<Rect>,
    /// The hint bar.
    pub hints: Option<Rect>,
}

impl Areas {
    /// The rectangle of a pane.
    pub fn of(&self, pane: Pane) -> Option<Rect> {
        match pane {
            Pane::Workflows => self.workflows,
            Pane::History => self.history,
            Pane::Graph => self.graph,
            Pane::Inspector => self.inspector,
        }
    }

    /// The pane at a screen cell.
    pub fn pane_at(&self, x: u16, y: u16) -> Option<Pane> {
        Pane::ALL
            .into_iter()
            .find(|&p| self.of(p).is_some_and(|r| r.contains((x, y).into())))
    }
}

/// Lay out a `width`×`height` screen with `focus` focused; `zoomed` gives it all the room.
pub fn areas(width: u16, height: u16, focus: Pane, zoomed: bool) -> Areas {
    let mut a = Areas::default();
    if width == 0 || height == 0 {
        return a;
    }
    let mut main = Rect::new(0, 0, width, height);
    if height >= 6 {
        a.hints = Some(Rect::new(0, height - 1, width, 1));
        a.status = Some(Rect::new(0, height - 2, width, 1));
        main.height = height - 2;
    }
    if zoomed {
        set(&mut a, focus, main);
        return a;
    }
    let narrow = width < 70;
    let left_focused = matches!(focus, Pane::Workflows | Pane::History);
    let (left, right) = if narrow {
        if left_focused {
            (Some(main), None)
        } else {
            (None, Some(main))
        }
    } else {
        let lw = (width as u32 * 28 / 100).clamp(22, 40) as u16;
        (
            Some(Rect::new(0, main.y, lw, main.height)),
            Some(Rect::new(lw, main.y, width - lw, main.height)),
        )
    };
    if let Some(l) = left {
        if l.height >= 10 {
            let top = l.height * 3 / 5;
            a.workflows = Some(Rect::new(l.x, l.y, l.width, top));
            a.history = Some(Rect::new(l.x, l.y + top, l.width, l.height - top));
        } else if focus == Pane::History {
            a.history = Some(l);
        } else {
            a.workflows = Some(l);
        }
    }
    if let Some(r) = right {
        if r.height >= 12 {
            let top = r.height * 11 / 20;
            a.graph = Some(Rect::new(r.x, r.y, r.width, top));
            a.inspector = Some(Rect::new(r.x, r.y + top, r.width, r.height - top));
        } else if focus == Pane::Inspector {
            a.inspector = Some(r);
        } else {
            a.graph = Some(r);
        }
    }
    a
}

/// Where the parts of a full screen (inbox, checkpoint browser) go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenAreas {
    /// The list (requests, checkpoints).
    pub list: Option<Rect>,
    /// The selected item's detail.
    pub detail: Option<Rect>,
}

/// Lay out a full screen of `width`×`height` (the bars keep their rows): side by side when
/// `side_by_side` and wide enough, else the list above its detail.
pub fn screen_areas(width: u16, height: u16, side_by_side: bool) -> ScreenAreas {
    let mut s = ScreenAreas::default();
    if width == 0 || height == 0 {
        return s;
    }
    let main_h = if height >= 6 { height - 2 } else { height };
    let main = Rect::new(0, 0, width, main_h);
    if side_by_side && width >= 100 {
        let lw = (width as u32 * 2 / 5).clamp(36, 70) as u16;
        s.list = Some(Rect::new(0, 0, lw, main_h));
        s.detail = Some(Rect::new(lw, 0, width - lw, main_h));
    } else if main_h >= 14 {
        let top = (main_h * 2 / 5).max(5);
        s.list = Some(Rect::new(0, 0, width, top));
        s.detail = Some(Rect::new(0, top, width, main_h - top));
    } else {
        s.list = Some(main);
    }
    s
}

fn set(a: &mut Areas, pane: Pane, r: Rect) {
    match pane {
        Pane::Workflows => a.workflows = Some(r),
        Pane::History => a.history = Some(r),
        Pane::Graph => a.graph = Some(r),
        Pane::Inspector => a.inspector = Some(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_fits_on_screen() {
        for (w, h) in [(0, 0), (1, 1), (20, 5), (40, 12), (80, 24), (200, 60)] {
            for focus in Pane::ALL {
                for zoomed in [false, true] {
                    let a = areas(w, h, focus, zoomed);
                    for r in [
                        a.workflows,
                        a.history,
                        a.graph,
                        a.inspector,
                        a.status,
                        a.hints,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        assert!(
                            r.right() <= w && r.bottom() <= h,
                            "{w}x{h} {focus:?}: {r:?}"
                        );
                    }
                    if w > 0 && h > 0 {
                        assert!(
                            a.of(focus).is_some(),
                            "{w}x{h}: focused {focus:?} has no room"
                        );
                    }
                }
            }
            for side in [false, true] {
                let s = screen_areas(w, h, side);
                for r in [s.list, s.detail].into_iter().flatten() {
                    assert!(r.right() <= w && r.bottom() <= h, "{w}x{h}: {r:?}");
                }
                assert_eq!(s.list.is_some(), w > 0 && h > 0);
            }
        }
    }
}
