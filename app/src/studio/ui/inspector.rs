//! The inspector pane: the selected task (status, attempts, result, errors and its streamed
//! log), the run's channel, and the run's event log.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{node_status, pane, placeholder};
use crate::studio::action::ActionId;
use crate::studio::app::{App, Pane, Tab};
use crate::studio::model::TaskStatus;
use crate::studio::model::run::stream_tag;
use crate::studio::theme::Theme;
use crate::text::{self, duration_ms, truncate};

/// Draw the inspector.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let mut title = vec![Span::raw(" ")];
    let mut tabs = vec![
        (Tab::Task, "Task"),
        (Tab::Channel, "Channel"),
        (Tab::Events, "Events"),
    ];
    if app.has_pools() {
        tabs.push((Tab::Pools, "Pools"));
    }
    for (tab, name) in tabs {
        let style = if app.inspector.tab == tab {
            theme.accent()
        } else {
            theme.muted()
        };
        title.push(Span::styled(name, style));
        title.push(Span::raw(" "));
    }
    let inner = pane(frame, area, app, Pane::Inspector, Line::from(title));
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    match app.inspector.tab {
        Tab::Task => draw_task(frame, inner, app),
        Tab::Channel => draw_channel(frame, inner, app),
        Tab::Events => draw_events(frame, inner, app),
        Tab::Pools => super::pools::draw(frame, inner, app),
    }
}

fn json_line(v: &graflow_engine::Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
}

fn draw_task(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let Some(e) = app.entry() else {
        placeholder(frame, area, theme, vec![Line::from("no workflow selected")]);
        return;
    };
    let Some(n) = e.graph.selected_index() else {
        placeholder(
            frame,
            area,
            theme,
            vec![Line::from("select a task in the graph")],
        );
        return;
    };
    let node = &e.graph.model.nodes[n];
    let status = node_status(e, n);
    let w = area.width as usize;
    let mut head: Vec<Line> = Vec::new();
    let mut first = vec![
        Span::styled(format!("{} ", status.glyph()), theme.status(status)),
        Span::styled(node.id.to_string(), theme.accent()),
        Span::styled(
            format!(" · {} · {}", node.kind, status.word()),
            theme.muted(),
        ),
    ];
    let task = e.run.as_ref().and_then(|r| r.task(&node.id));
    if let Some(t) = task {
        let mut facts = format!(" · cycle {} · attempt {}", t.cycle, t.attempt);
        if let Some(ms) = t.last_ms {
            facts.push_str(&format!(" · last {}", duration_ms(ms)));
        }
        if t.cycle > 1 {
            facts.push_str(&format!(" · total {}", duration_ms(t.total_ms)));
        }
        first.push(Span::styled(facts, theme.muted()));
    }
    head.push(Line::from(first));
    if node.is_group {
        let members: Vec<&str> = node
            .members
            .iter()
            .map(|&m| &*e.graph.model.nodes[m].id)
            .collect();
        head.push(Line::from(format!(
            "group ({}) of {}",
            node.policy.clone().unwrap_or_default(),
            members.join(" | ")
        )));
        if let Some(g) = e.run.as_ref().and_then(|r| r.groups.get(&node.id)) {
            for (id, msg) in g.failed.iter().take(3) {
                head.push(Line::from(Span::styled(
                    truncate(&format!("✗ {id}: {msg}"), w),
                    theme.error(),
                )));
            }
        }
    }
    if let Some(sub) = e.run.as_ref().and_then(|r| r.sub_runs.get(&node.id)) {
        // A `Workflow` task: its sub-run's tasks, live.
        let state = match sub.status {
            None => "running".to_string(),
            Some(s) => crate::studio::model::run::status_word(s).to_string(),
        };
        let mut spans = vec![Span::styled(
            format!("sub-run '{}' {state}:", sub.workflow),
            theme.muted(),
        )];
        for (id, status) in &sub.tasks {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(status.glyph(), theme.status(*status)));
            spans.push(Span::raw(format!(" {id}")));
        }
        let rows = super::hard_wrap(vec![Line::from(spans)], w as u16);
        head.extend(rows.into_iter().take(4));
    }
    if let Some(t) = task {
        if let Some(wait) = t
            .waiting
            .as_ref()
            .filter(|_| t.status() == TaskStatus::Waiting)
        {
            head.push(Line::from(Span::styled(
                truncate(&format!("◷ waiting: {}", wait.detail), w),
                theme.warning(),
            )));
        }
        if let Some(r) = &t.result {
            head.push(Line::from(vec![
                Span::styled("result ", theme.muted()),
                Span::raw(truncate(&json_line(r), w.saturating_sub(7))),
            ]));
        }
        for (attempt, msg) in t.errors.iter().rev().take(2) {
            let text = format!("✗ attempt {attempt}: {}", msg.replace('\n', " ⏎ "));
            if app.inspector.log.wrap {
                // `w` wraps the errors as it wraps the log (up to a few rows each).
                let rows = super::hard_wrap(
                    vec![Line::from(Span::styled(text, theme.error()))],
                    w as u16,
                );
                head.extend(rows.into_iter().take(4));
            } else {
                head.push(Line::from(Span::styled(truncate(&text, w), theme.error())));
            }
        }
        if t.attempts.len() > 1 {
            let shown: Vec<String> = t
                .attempts
                .iter()
                .rev()
                .take(8)
                .map(|a| {
                    let g = match &a.outcome {
                        None => "●",
                        Some(Ok(())) => "✓",
                        Some(Err(_)) => "✗",
                    };
                    let d = a
                        .end
                        .and_then(|end| end.duration_since(a.start).ok())
                        .map(|d| duration_ms(d.as_secs_f64() * 1000.0))
                        .unwrap_or_default();
                    format!("{g}{}.{} {d}", a.cycle, a.attempt)
                })
                .collect();
            head.push(Line::from(Span::styled(
                truncate(&format!("attempts (newest first): {}", shown.join("  ")), w),
                theme.muted(),
            )));
        }
    } else if e.run.is_none() {
        let preds: Vec<&str> = e
            .graph
            .model
            .edges
            .iter()
            .filter(|x| x.1 == n)
            .map(|x| &*e.graph.model.nodes[x.0].id)
            .collect();
        let succs: Vec<&str> = e
            .graph
            .model
            .edges
            .iter()
            .filter(|x| x.0 == n)
            .map(|x| &*e.graph.model.nodes[x.1].id)
            .collect();
        head.push(Line::from(Span::styled(
            truncate(
                &format!("after: {}   before: {}", preds.join(", "), succs.join(", ")),
                w,
            ),
            theme.muted(),
        )));
        let hint = if app.settings.read_only {
            "not run yet".to_string()
        } else {
            format!(
                "not run yet: {} runs the workflow",
                app.key_name(ActionId::Run)
            )
        };
        head.push(Line::from(Span::styled(hint, theme.muted())));
    }
    // The log header.
    let lines = app.log_lines();
    let mut flags = Vec::new();
    if app.inspector.log.follow {
        flags.push("follow");
    }
    if app.inspector.log.wrap {
        flags.push("wrap");
    }
    if app.inspector.log.errors_only {
        flags.push("errors only");
    }
    let mut log_head = format!("log: {}", text::plural(lines.len(), "line"));
    if let Some(t) = task
        && t.log.dropped() > 0
    {
        log_head.push_str(&format!(" ({} older dropped)", t.log.dropped()));
    }
    if !flags.is_empty() {
        log_head.push_str(&format!(" · {}", flags.join(" · ")));
    }
    if let Some(s) = &app.inspector.log.search {
        log_head.push_str(&format!(" · /{s}"));
    }
    head.push(Line::from(Span::styled(
        truncate(&log_head, w),
        theme.muted(),
    )));
    let head_h = (head.len() as u16).min(area.height);
    frame.render_widget(
        Paragraph::new(head),
        Rect {
            height: head_h,
            ..area
        },
    );
    let mut log_area = Rect {
        y: area.y + head_h,
        height: area.height - head_h,
        ..area
    };
    if let Some(input) = app.prompt.text_for(Pane::Inspector)
        && log_area.height > 0
    {
        let prompt = Line::from(vec![
            Span::styled("/", theme.key()),
            Span::raw(input.to_string()),
            Span::styled("█", theme.accent()),
        ]);
        frame.render_widget(
            Paragraph::new(prompt),
            Rect {
                y: log_area.bottom() - 1,
                height: 1,
                ..log_area
            },
        );
        log_area.height -= 1;
    }
    if log_area.height == 0 {
        return;
    }
    if lines.is_empty() {
        let text = if task.is_some() { "(no output)" } else { "" };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.muted())), log_area);
        return;
    }
    let h = log_area.height as usize;
    let cursor = if app.inspector.log.follow {
        lines.len() - 1
    } else {
        app.inspector.log.cursor.min(lines.len() - 1)
    };
    let text_w = (log_area.width as usize).saturating_sub(4).max(1);
    // Build display rows upward from the cursor's line until the pane is full.
    let mut rows: Vec<Line> = Vec::new();
    let mut top_line = cursor + 1;
    let below = if app.inspector.log.follow { 0 } else { h / 3 };
    let end = (cursor + 1 + below).min(lines.len());
    for i in (0..end).rev() {
        let l = lines[i];
        let pieces = if app.inspector.log.wrap {
            wrap(&l.text, text_w)
        } else {
            vec![l.text.clone()]
        };
        let mut new_rows = Vec::new();
        for (k, piece) in pieces.iter().enumerate() {
            let tag = if k == 0 {
                format!("{} ", stream_tag(l.stream))
            } else {
                "    ".into()
            };
            let base = if l.is_error() {
                theme
                    .error()
                    .remove_modifier(ratatui::style::Modifier::BOLD)
            } else {
                theme.text()
            };
            let mut spans = vec![Span::styled(tag, theme.muted())];
            spans.extend(highlight(
                piece,
                app.inspector.log.search.as_deref(),
                base,
                theme,
            ));
            let mut line = Line::from(spans);
            if i == cursor && !app.inspector.log.follow {
                line = line.style(theme.selection());
            }
            new_rows.push(line);
        }
        for r in new_rows.into_iter().rev() {
            rows.push(r);
        }
        top_line = i;
        if rows.len() >= h {
            break;
        }
    }
    let _ = top_line;
    rows.reverse();
    let skip = rows.len().saturating_sub(h);
    let rows: Vec<Line> = rows.into_iter().skip(skip).collect();
    frame.render_widget(Paragraph::new(rows), log_area);
}

/// Split a line into pieces of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// Spans of `text` with the matches of `needle` (lower case) highlighted.
fn highlight<'a>(text: &str, needle: Option<&str>, base: Style, theme: &Theme) -> Vec<Span<'a>> {
    let Some(needle) = needle.filter(|n| !n.is_empty()) else {
        return vec![Span::styled(text.to_string(), base)];
    };
    let mut out = Vec::new();
    let mut plain = String::new();
    for (matched, piece) in match_ranges(text, needle) {
        if matched {
            if !plain.is_empty() {
                out.push(Span::styled(std::mem::take(&mut plain), base));
            }
            out.push(Span::styled(
                piece.to_string(),
                theme
                    .accent()
                    .add_modifier(ratatui::style::Modifier::REVERSED),
            ));
        } else {
            plain.push_str(piece);
        }
    }
    if !plain.is_empty() {
        out.push(Span::styled(plain, base));
    }
    out
}

/// `text` cut into pieces, each marked whether it matches `needle` (lower case), comparing
/// character by character with each character lower-cased on its own: the pieces are slices
/// of `text` at character boundaries, whatever lower-casing does to byte lengths.
fn match_ranges<'t>(text: &'t str, needle: &str) -> Vec<(bool, &'t str)> {
    let needle: Vec<char> = needle.chars().collect();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let lower = |c: char| c.to_lowercase().next().unwrap_or(c);
    let mut out = Vec::new();
    let (mut i, mut plain_from) = (0, 0);
    while !needle.is_empty() && i + needle.len() <= chars.len() {
        let hit = needle
            .iter()
            .enumerate()
            .all(|(k, n)| lower(chars[i + k].1) == *n);
        if hit {
            let start = chars[i].0;
            let end = chars.get(i + needle.len()).map_or(text.len(), |c| c.0);
            if start > plain_from {
                out.push((false, &text[plain_from..start]));
            }
            out.push((true, &text[start..end]));
            plain_from = end;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    if plain_from < text.len() {
        out.push((false, &text[plain_from..]));
    }
    out
}

fn draw_channel(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let Some(run) = app.entry().and_then(|e| e.run.as_ref()) else {
        placeholder(
            frame,
            area,
            theme,
            vec![Line::from(
                "no run yet: the channel shows once a run starts",
            )],
        );
        return;
    };
    if run.channel.is_empty() {
        let text = if run.is_active() {
            "the channel is empty (so far)"
        } else {
            "the channel was empty"
        };
        placeholder(frame, area, theme, vec![Line::from(text)]);
        return;
    }
    let w = area.width as usize;
    let key_w = run
        .channel
        .keys()
        .map(|k| text::width(k))
        .max()
        .unwrap_or(4)
        .clamp(4, 24);
    let list_h = (area.height as usize * 3 / 5).max(1);
    let sel = app.inspector.channel_selected.min(run.channel.len() - 1);
    let offset = sel.saturating_sub(list_h.saturating_sub(1));
    let mut lines = Vec::new();
    for (i, (k, v)) in run.channel.iter().enumerate().skip(offset).take(list_h) {
        let mut line = Line::from(vec![
            Span::styled(format!("{} ", text::pad(k, key_w)), theme.accent()),
            Span::raw(truncate(&json_line(v), w.saturating_sub(key_w + 1))),
        ]);
        if i == sel {
            line = line.style(theme.selection());
        }
        lines.push(line);
    }
    if let Some((k, v)) = run.channel.iter().nth(sel) {
        lines.push(Line::from(Span::styled(
            format!("── {k} ──"),
            theme.muted(),
        )));
        let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
        for l in pretty.lines().take(area.height as usize) {
            lines.push(Line::from(truncate(l, w)));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// Time since the run's start in a fixed width of 8, fine enough for fast runs (whose events
/// all fall within a millisecond): `    41µs`, ` 412.3ms`, `  12.345s`.
pub fn since_start(secs: f64) -> String {
    if secs < 0.001 {
        format!("{:>6.0}µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:>6.1}ms", secs * 1e3)
    } else {
        format!("{secs:>7.3}s")
    }
}

fn draw_events(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.settings.theme;
    let Some(run) = app.entry().and_then(|e| e.run.as_ref()) else {
        placeholder(
            frame,
            area,
            theme,
            vec![Line::from("no run yet: events show once a run starts")],
        );
        return;
    };
    let h = area.height as usize;
    let n = run.events.len();
    let top = app
        .inspector
        .events_scroll
        .unwrap_or(n.saturating_sub(h))
        .min(n.saturating_sub(1));
    let w = area.width as usize;
    let mut lines = Vec::new();
    for ev in run.events.iter().skip(top).take(h) {
        let t = ev
            .ts
            .duration_since(run.started)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let style = if ev.is_error {
            theme.error()
        } else {
            theme.text()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", since_start(t)), theme.muted()),
            Span::styled(format!("{:<18} ", ev.name), theme.accent()),
            Span::styled(truncate(&ev.text, w.saturating_sub(28)), style),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use super::{match_ranges, since_start};

    #[test]
    fn matches_ignore_case_across_any_characters() {
        // Lower-casing changes byte lengths here ('İ' grows, 'ẞ' shrinks): no cut inside one.
        let text = "İx ẞ error ERROR é";
        let pieces = match_ranges(text, "error");
        assert_eq!(pieces.iter().map(|p| p.1).collect::<String>(), text);
        assert_eq!(pieces.iter().filter(|p| p.0).count(), 2);
        assert_eq!(match_ranges("ẞİ", "ß"), [(true, "ẞ"), (false, "İ")]);
    }

    proptest::proptest! {
        #[test]
        fn pieces_always_rebuild_the_text(text in "\\PC{0,40}", needle in "\\PC{0,3}") {
            let needle = needle.to_lowercase();
            let pieces = match_ranges(&text, &needle);
            proptest::prop_assert_eq!(pieces.iter().map(|p| p.1).collect::<String>(), text);
        }
    }

    #[test]
    fn event_times_are_fine_enough_for_fast_runs() {
        assert_eq!(since_start(0.000_041), "    41µs");
        assert_eq!(since_start(0.4123), " 412.3ms");
        assert_eq!(since_start(12.345), " 12.345s");
        assert_ne!(since_start(0.0002), since_start(0.0009));
    }
}
