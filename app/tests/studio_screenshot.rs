//! The screenshots in `assets/` (`studio-list.svg`, `studio-canvas.svg`, `studio-inbox.svg`,
//! and their text captures) are drawn from the studio itself; this test redraws them and checks the files are
//! current. `UPDATE_SCREENSHOTS=1 cargo test -p graflow --test studio_screenshot` rewrites them.

mod studio_support;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use graflow::studio::action::Action;
use graflow::studio::app::{App, Msg, Pane};
use graflow::studio::graph::layout;
use graflow::studio::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use studio_support::*;

const FG: &str = "#c8d3f5";
const BG: &str = "#1e2030";
const CW: f64 = 8.4;
const CH: f64 = 17.0;

fn hex(c: Color, default: &str) -> String {
    let named = |i: u8| -> &'static str {
        [
            "#1b1d2b", "#ff757f", "#c3e88d", "#ffc777", "#82aaff", "#c099ff", "#86e1fc", "#828bb8",
            "#444a73", "#ff757f", "#c3e88d", "#ffc777", "#82aaff", "#c099ff", "#86e1fc", "#c8d3f5",
        ][i as usize % 16]
    };
    match c {
        Color::Reset => default.to_string(),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Black => named(0).into(),
        Color::Red => named(1).into(),
        Color::Green => named(2).into(),
        Color::Yellow => named(3).into(),
        Color::Blue => named(4).into(),
        Color::Magenta => named(5).into(),
        Color::Cyan => named(6).into(),
        Color::Gray => named(7).into(),
        Color::DarkGray => named(8).into(),
        Color::LightRed => named(9).into(),
        Color::LightGreen => named(10).into(),
        Color::LightYellow => named(11).into(),
        Color::LightBlue => named(12).into(),
        Color::LightMagenta => named(13).into(),
        Color::LightCyan => named(14).into(),
        Color::White => named(15).into(),
        Color::Indexed(i) => named(i).into(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The buffer as an SVG picture of a terminal.
fn svg(buf: &Buffer, title: &str) -> String {
    let (w, h) = (buf.area.width, buf.area.height);
    let (pw, ph) = (w as f64 * CW + 24.0, h as f64 * CH + 48.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{pw:.0}" height="{ph:.0}" viewBox="0 0 {pw:.0} {ph:.0}" font-family="'DejaVu Sans Mono', 'Menlo', 'Consolas', monospace" font-size="14">"#
    );
    let _ = writeln!(out, r#"<title>{}</title>"#, escape(title));
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" rx="8" fill="{BG}"/>"#
    );
    for (i, c) in ["#ff5f57", "#febc2e", "#28c840"].iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<circle cx="{}" cy="14" r="5" fill="{c}"/>"#,
            18 + i * 16
        );
    }
    let _ = writeln!(out, r#"<g transform="translate(12,30)">"#);
    for y in 0..h {
        let mut x = 0;
        while x < w {
            let cell = &buf[(x, y)];
            let rev = cell.modifier.contains(Modifier::REVERSED);
            let (fg, bg) = if rev {
                (cell.bg, cell.fg)
            } else {
                (cell.fg, cell.bg)
            };
            let fgc = hex(fg, if rev { BG } else { FG });
            let bgc = hex(bg, if rev { FG } else { BG });
            let bold = cell.modifier.contains(Modifier::BOLD);
            let dim = cell.modifier.contains(Modifier::DIM);
            // A run of cells with the same style.
            let start = x;
            let mut text = String::new();
            while x < w {
                let c = &buf[(x, y)];
                let same = c.fg == cell.fg && c.bg == cell.bg && c.modifier == cell.modifier;
                if !same {
                    break;
                }
                text.push_str(c.symbol());
                x += 1;
            }
            let n = x - start;
            let (px, py) = (start as f64 * CW, y as f64 * CH);
            if bgc != BG {
                let _ = writeln!(
                    out,
                    r#"<rect x="{px:.1}" y="{py:.1}" width="{:.1}" height="{CH}" fill="{bgc}"/>"#,
                    n as f64 * CW
                );
            }
            if text.trim().is_empty() {
                continue;
            }
            let weight = if bold { r#" font-weight="bold""# } else { "" };
            let opacity = if dim { r#" opacity="0.6""# } else { "" };
            let _ = writeln!(
                out,
                r#"<text x="{px:.1}" y="{:.1}" fill="{fgc}" textLength="{:.1}" lengthAdjust="spacingAndGlyphs" xml:space="preserve"{weight}{opacity}>{}</text>"#,
                py + CH * 0.78,
                n as f64 * CW,
                escape(&text)
            );
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}

fn shot(app: &App, w: u16, h: u16) -> (Buffer, String) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| panic!("{e}"));
    t.draw(|f| ui::draw(f, app))
        .unwrap_or_else(|e| panic!("{e}"));
    let buf = t.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    (buf, text)
}

fn scene() -> App {
    let mut a = app();
    a.add_workflow(etl());
    a.add_workflow(looping());
    a.update(Action::Run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    a.on_msg(Msg::Engine(etl_failed_run(&id)));
    let record = |run: &str, wf: &str, started: &str, status| graflow::history::RunRecord {
        key: run.into(),
        run_id: run.into(),
        workflow: wf.into(),
        file: None,
        started: started.into(),
        finished: Some(started.into()),
        status: Some(status),
        error: None,
        tasks_succeeded: 0,
        tasks_failed: 0,
        resumed_from: None,
    };
    use graflow_engine::RunStatus::{Failed, Succeeded};
    a.on_msg(Msg::History(vec![
        record("r3", "etl", "2026-11-28T14:34:10Z", Failed),
        record("r2", "looping", "2026-11-28T14:31:02Z", Succeeded),
        record("r1", "etl", "2026-11-28T14:30:45Z", Succeeded),
    ]));
    a.effects.clear();
    a
}

fn check(name: &str, content: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(name);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != content {
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else {
            panic!("assets/{name} is out of date; run with UPDATE_SCREENSHOTS=1");
        }
    }
}

#[test]
fn screenshots_are_current() {
    let (w, h) = (110, 32);
    let mut a = scene();
    a.update(Action::Resize(w, h));
    a.focus = Pane::Inspector;
    let (buf, text) = shot(&a, w, h);
    check(
        "studio-list.svg",
        &svg(&buf, "graflow studio: a failed run in the list view"),
    );
    check("studio-list.txt", &text);

    let mut a = scene();
    a.update(Action::Resize(w, h));
    a.focus = Pane::Graph;
    let view = a
        .entry()
        .map(|e| e.graph.canvas_view.clone())
        .unwrap_or_default();
    a.update(Action::ViewCanvas);
    a.on_msg(Msg::Layout {
        index: 0,
        layout: Arc::new(layout::compute(&view)),
    });
    a.update(Action::ZoomOut);
    a.update(Action::SelectNode("clean_b".into()));
    let (buf, text) = shot(&a, w, h);
    check(
        "studio-canvas.svg",
        &svg(&buf, "graflow studio: the layered canvas"),
    );
    check("studio-canvas.txt", &text);

    // The inbox: a paused run's approval being answered with a reason.
    let mut a = scene();
    a.update(Action::Resize(w, h));
    a.update(Action::ToggleInbox);
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    a.now = at(130_000);
    a.update(Action::AnswerRequest);
    for c in "release notes checked".chars() {
        a.update(Action::AnswerKey(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char(c),
            crossterm::event::KeyModifiers::NONE,
        )));
    }
    a.message = None;
    a.effects.clear();
    let (buf, text) = shot(&a, w, h);
    check(
        "studio-inbox.svg",
        &svg(&buf, "graflow studio: answering an approval in the inbox"),
    );
    check("studio-inbox.txt", &text);
}
