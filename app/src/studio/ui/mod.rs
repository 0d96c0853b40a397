//! Drawing: a pure function of the [`App`]. Nothing here changes state or does I/O; each
//! pane draws from what the app holds, and only the visible rows or cells.

mod bars;
mod canvas;
mod checkpoints;
pub mod fleet;
mod help;
mod inbox;
mod inspector;
mod list;
mod pools;
mod timeline;
mod workflows;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use super::app::{App, GraphView, Pane};
use super::areas;
use super::model::{LoadState, TaskStatus, WorkflowEntry};
use super::screens::Screen;
use super::theme::Theme;
use crate::text::{self, truncate};

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = &app.settings.theme;
    frame.render_widget(Block::new().style(theme.text()), area);
    let a = areas::areas(area.width, area.height, app.focus, app.zoomed);
    match app.showing {
        Screen::Main => draw_main(frame, &a, app),
        Screen::Inbox => inbox::draw(frame, app),
        Screen::Checkpoints => checkpoints::draw(frame, app),
        Screen::Fleet => fleet::draw(frame, app),
    }
    if let Some(r) = a.status {
        bars::draw_status(frame, r, app);
    } else {
        bars::draw_badge_corner(frame, area, app);
    }
    if let Some(r) = a.hints {
        bars::draw_hints(frame, r, app);
    }
    help::draw_overlay(frame, area, app);
}

/// The workflows, the run history, the graph and the inspector.
fn draw_main(frame: &mut Frame, a: &areas::Areas, app: &App) {
    if let Some(r) = a.workflows {
        workflows::draw_workflows(frame, r, app);
    }
    if let Some(r) = a.history {
        workflows::draw_history(frame, r, app);
    }
    if let Some(r) = a.graph {
        match app.graph.view {
            GraphView::List => list::draw(frame, r, app),
            GraphView::Canvas => canvas::draw(frame, r, app),
            GraphView::Timeline => timeline::draw(frame, r, app),
        }
    }
    if let Some(r) = a.inspector {
        inspector::draw(frame, r, app);
    }
}

/// A pane's frame with its title; returns the inside.
pub(crate) fn pane(frame: &mut Frame, area: Rect, app: &App, pane: Pane, title: Line<'_>) -> Rect {
    let theme = &app.settings.theme;
    let focused = app.focus == pane;
    let title = fit_title(title, area.width);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border(focused))
        .title(title.style(theme.title(focused)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// A full screen's framed part (inbox, checkpoint browser) with its title; returns the
/// inside.
pub(crate) fn screen_block(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    title: String,
    focused: bool,
) -> Rect {
    let theme = &app.settings.theme;
    let title = fit_title(Line::from(title), area.width);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border(focused))
        .title(title.style(theme.title(focused)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// A pane title cut to fit between the corners of a frame `width` cells wide (with `…`), so
/// a long title never covers a corner.
pub(crate) fn fit_title(title: Line<'_>, width: u16) -> Line<'static> {
    let text: String = title.spans.iter().map(|s| s.content.as_ref()).collect();
    let room = (width as usize).saturating_sub(2);
    let style = title.spans.first().map(|s| s.style).unwrap_or_default();
    Line::from(Span::styled(truncate(&text, room), style)).style(title.style)
}

/// Wrap lines to at most `width` cells (at spaces when a row has one, else anywhere but
/// inside a character), keeping their styles, so the number of rows they take is known before
/// drawing.
pub(crate) fn hard_wrap(lines: Vec<Line<'_>>, width: u16) -> Vec<Line<'static>> {
    let width = width.max(1) as usize;
    let mut out = Vec::new();
    for line in lines {
        let cells: Vec<Cell<'_>> = line
            .spans
            .iter()
            .flat_map(|s| text::cells(&s.content).map(move |(g, w)| (g, w, s.style)))
            .collect();
        let mut start = 0;
        loop {
            // The characters that fit on the row (at least one, so every row moves on).
            let mut used = 0;
            let mut fits = start;
            while fits < cells.len() && (fits == start || used + cells[fits].1 <= width) {
                used += cells[fits].1;
                fits += 1;
            }
            let end = if fits == cells.len() {
                fits
            } else {
                // The last space within the row ends it (the space stays on this row).
                cells[start..fits]
                    .iter()
                    .rposition(|(g, ..)| *g == " ")
                    .filter(|&i| i > 0)
                    .map_or(fits, |i| start + i + 1)
            };
            out.push(styled_row(&cells[start..end]).style(line.style));
            start = end;
            if start >= cells.len() {
                break;
            }
        }
    }
    out
}

/// A character (grapheme cluster) of a styled line: its text, its cells and its style.
type Cell<'a> = (&'a str, usize, Style);

/// One line from characters with their styles (neighbours of one style share a span).
fn styled_row(cells: &[Cell<'_>]) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut style = cells.first().map(|c| c.2).unwrap_or_default();
    for &(g, _, st) in cells {
        if st != style && !text.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut text), style));
        }
        style = st;
        text.push_str(g);
    }
    if !text.is_empty() {
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

pub use crate::runsetup::human_bytes;

/// The status of a node in the selected workflow's shown run: a task's own, or a summary
/// of a group's contents.
pub(crate) fn node_status(entry: &WorkflowEntry, node: usize) -> TaskStatus {
    let model = &entry.graph.model;
    let Some(run) = &entry.run else {
        return TaskStatus::Pending;
    };
    let n = &model.nodes[node];
    if !n.is_group {
        return run.status_of(&n.id);
    }
    match run.groups.get(&n.id) {
        Some(g) if g.ok == Some(true) => TaskStatus::Succeeded,
        Some(g) if g.ok == Some(false) => TaskStatus::Failed,
        Some(g) if g.started => TaskStatus::Running,
        _ => {
            if run.is_active() {
                TaskStatus::Pending
            } else {
                TaskStatus::Skipped
            }
        }
    }
}

/// A short note for a node: cycle, attempt, duration (or elapsed time while running).
pub(crate) fn node_note(app: &App, entry: &WorkflowEntry, node: usize) -> String {
    let n = &entry.graph.model.nodes[node];
    let Some(run) = &entry.run else {
        return String::new();
    };
    if n.is_group {
        let contents = entry.graph.model.group_contents(node);
        let ids = contents.iter().map(|&i| &*entry.graph.model.nodes[i].id);
        return run.counts(ids).summary();
    }
    let Some(t) = run.task(&n.id) else {
        return String::new();
    };
    let mut parts = Vec::new();
    if t.cycle > 1 {
        parts.push(format!("×{}", t.cycle));
    }
    if t.attempt > 0 {
        parts.push(format!("a{}", t.attempt));
    }
    if let Some(since) = t.running_since() {
        let secs = app
            .now
            .duration_since(since)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        parts.push(text::duration_ms(secs * 1000.0));
    } else if let Some(ms) = t.last_ms {
        parts.push(text::duration_ms(ms));
    }
    parts.join(" ")
}

/// The load-state glyph and style of a workflow entry.
pub(crate) fn entry_glyph(theme: &Theme, e: &WorkflowEntry) -> (&'static str, Style) {
    match e.state {
        LoadState::Loading => ("…", theme.muted()),
        LoadState::Ready => match e.run.as_ref().map(|r| r.phase) {
            Some(super::model::RunPhase::Running) | Some(super::model::RunPhase::Starting) => {
                ("●", theme.status(TaskStatus::Running))
            }
            Some(super::model::RunPhase::Finished(graflow_engine::RunStatus::Succeeded)) => {
                ("✓", theme.status(TaskStatus::Succeeded))
            }
            Some(super::model::RunPhase::Finished(graflow_engine::RunStatus::Paused)) => {
                ("⏸", theme.status(TaskStatus::Retrying))
            }
            Some(super::model::RunPhase::Finished(_)) => ("✗", theme.status(TaskStatus::Failed)),
            None => ("◇", theme.text()),
        },
        LoadState::Invalid => ("!", theme.error()),
        LoadState::Deleted => ("?", theme.error()),
    }
}

/// A centred message in an area (wrapped to its width, so a narrow pane still shows it).
pub(crate) fn placeholder(frame: &mut Frame, area: Rect, theme: &Theme, lines: Vec<Line<'_>>) {
    let lines = hard_wrap(lines, area.width);
    let h = lines.len() as u16;
    let y = area.y + area.height.saturating_sub(h) / 2;
    let r = Rect::new(area.x, y, area.width, h.min(area.height));
    frame.render_widget(Paragraph::new(lines).style(theme.muted()).centered(), r);
}

/// For a workflow with no graph to show: every problem of its file, wrapped, or "loading…".
/// Returns false (drawing nothing) when there is a graph.
pub(crate) fn draw_without_graph(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    e: &WorkflowEntry,
) -> bool {
    if !e.graph.model.is_empty() {
        return false;
    }
    let mut lines = Vec::new();
    for d in &e.diagnostics {
        let place = if d.line > 0 {
            format!(":{}:{}", d.line, d.column.max(1))
        } else {
            String::new()
        };
        lines.push(Line::from(Span::styled(
            format!("✗ {}{place}: {}", e.label(), d.message),
            theme.error(),
        )));
        if let Some(h) = &d.hint {
            lines.push(Line::from(Span::styled(
                format!("  hint: {h}"),
                theme.warning(),
            )));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled("loading…", theme.muted())));
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        area,
    );
    true
}

/// How many lines the graph pane's header takes for this entry.
pub fn header_height(e: &WorkflowEntry) -> usize {
    error_banner(&Theme::monochrome(), e).map_or(1, |l| l.len())
}

/// The first error of an invalid workflow, with its hint on a second line, for the graph
/// pane's top.
pub(crate) fn error_banner<'a>(theme: &Theme, e: &WorkflowEntry) -> Option<Vec<Line<'a>>> {
    let text = e.first_error()?;
    let hint = e.diagnostics.first().and_then(|d| d.hint.clone());
    let mut lines = vec![Line::from(vec![
        Span::styled("✗ ", theme.error()),
        Span::styled(format!("{}:{text}", e.label()), theme.error()),
    ])];
    let mut second = Vec::new();
    if let Some(h) = hint {
        second.push(Span::styled(format!("  hint: {h}"), theme.warning()));
    }
    if e.workflow.is_some() {
        second.push(Span::styled(
            "  (showing the last good version)",
            theme.muted(),
        ));
    }
    if !second.is_empty() {
        lines.push(Line::from(second));
    }
    Some(lines)
}
