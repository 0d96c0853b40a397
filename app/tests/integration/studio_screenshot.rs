//! The screenshots in `assets/` (`studio-list.svg`, `studio-canvas.svg`, `studio-inbox.svg`,
//! and their text captures) are drawn from the studio itself; this test redraws them and checks the files are
//! current. `UPDATE_SCREENSHOTS=1 cargo test -p graflow --test studio_screenshot` rewrites them.

use crate::studio_support;

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
    let mut a = after_run(&[etl(), looping()], etl_failed_run);
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

/// A fleet of eight workers (one lost), three queues (one with a dead letter) and four runs.
fn fleet_data(t: u64, processed: u64) -> graflow::studio::screens::fleet::FleetData {
    use graflow_engine::distributed::metrics::WorkerRecord;
    use graflow_engine::distributed::watch::{
        DeadLetter, FleetSnapshot, QueueView, RunSummary, WorkerView,
    };
    let workers = (0..8u32)
        .map(|i| {
            let lost = i == 5;
            WorkerView {
                id: format!("worker-node{}-{}-7f3a{i:02}", i % 3 + 1, 4100 + i),
                record: Some(WorkerRecord {
                    id: String::new(),
                    host: format!("node{}", i % 3 + 1),
                    pid: 4100 + i,
                    queues: if i < 6 {
                        vec!["default".into()]
                    } else {
                        vec!["gpu".into()]
                    },
                    concurrency: 8,
                    busy: if lost { 0 } else { (i as usize * 3) % 9 },
                    processed: processed + i as u64 * 40,
                    succeeded: processed,
                    failed: i as u64 % 3,
                    retried: 0,
                    reclaimed: 0,
                    dead_lettered: 0,
                    uptime_secs: 3600.0,
                    beat_ms: t,
                    state: if i % 4 == 3 { "idle" } else { "busy" }.into(),
                    duration_sum_us: processed * 8 * 42_000,
                    duration_count: processed * 8,
                }),
                beat_age_ms: if lost { 41_000 } else { 200 + i as u64 * 90 },
                state: if lost {
                    "lost".into()
                } else if i % 4 == 3 {
                    "idle".into()
                } else {
                    "busy".into()
                },
            }
        })
        .collect();
    let queues = vec![
        QueueView {
            name: "default".into(),
            depth: 1_240,
            in_flight: 31,
            dead: 0,
            dead_letters: vec![],
        },
        QueueView {
            name: "gpu".into(),
            depth: 57,
            in_flight: 6,
            dead: 1,
            dead_letters: vec![DeadLetter {
                entry: "1-0".into(),
                run: "0193f2a1c4e".into(),
                attempt: "train:1:0".into(),
                error: "dead-lettered: delivered 5 times and its worker stopped every time".into(),
                held_until_ms: Some(t + 540_000),
            }],
        },
        QueueView {
            name: "io".into(),
            depth: 0,
            in_flight: 0,
            dead: 0,
            dead_letters: vec![],
        },
    ];
    let run =
        |id: &str, wf: &str, state: &str, status: Option<&str>, ago: u64, events| RunSummary {
            run_id: id.into(),
            workflow: wf.into(),
            state: state.into(),
            status: status.map(str::to_string),
            host: "ci-runner-2".into(),
            started_ms: t - ago,
            updated_ms: t,
            events,
            ..RunSummary::default()
        };
    graflow::studio::screens::fleet::FleetData {
        runs: vec![
            run("0193f2b7d21a4c", "etl", "live", None, 42_000, 318),
            run("0193f2b5e0c17f", "images", "live", None, 190_000, 2_406),
            run(
                "0193f2a1c4e9b0",
                "train",
                "ended",
                Some("failed"),
                1_260_000,
                97,
            ),
            run(
                "0193f29c0d55e2",
                "etl",
                "ended",
                Some("succeeded"),
                3_700_000,
                402,
            ),
        ],
        fleet: FleetSnapshot {
            at_ms: t,
            workers,
            queues,
        },
    }
}

#[test]
fn fleet_screenshots_are_current() {
    use graflow::studio::screens::fleet::AttachedRun;
    let (w, h) = (110, 32);
    let mut a = app();
    a.update(Action::Resize(w, h));
    a.fleet.attached = Some("redis://10.0.0.5:6379".into());
    a.update(Action::ToggleFleet);
    let t0 = 1_795_000_000_000u64;
    let mut processed = 1_000;
    for i in 0..80u64 {
        processed += 20 + (i * 37 % 23) * 3;
        a.on_msg(Msg::Fleet(Ok(fleet_data(t0 + i * 1000, processed))));
    }
    a.effects.clear();
    a.message = None;
    let (buf, text) = shot(&a, w, h);
    check(
        "studio-fleet.svg",
        &svg(&buf, "graflow studio: the fleet view"),
    );
    check("studio-fleet.txt", &text);

    // Enter on the first run: it shows like a local run.
    a.update(Action::AttachRun);
    a.effects.clear();
    let summary = a
        .fleet
        .selected_run()
        .cloned()
        .unwrap_or_else(|| panic!("no run"));
    a.on_msg(Msg::Attached(Box::new(Ok(AttachedRun {
        summary: summary.clone(),
        workflow: etl(),
        path: "/srv/flows/etl.ron".into(),
    }))));
    let mut events = etl_failed_run(&summary.run_id);
    events.truncate(events.len().saturating_sub(3));
    a.on_msg(Msg::Engine(events));
    a.effects.clear();
    a.message = Some((
        format!("following run {} of etl (live)", summary.run_id),
        graflow::studio::app::Level::Info,
    ));
    let (buf, text) = shot(&a, w, h);
    check(
        "studio-attached.svg",
        &svg(&buf, "graflow studio: a run of the fleet, followed live"),
    );
    check("studio-attached.txt", &text);
}
