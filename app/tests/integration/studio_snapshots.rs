//! Snapshots of every view on ratatui's `TestBackend`, each at two sizes (100×30 and 60×20),
//! plus one snapshot with styles where colour is the point.

use crate::studio_support;

use std::path::PathBuf;
use std::sync::Arc;

use graflow::studio::action::Action;
use graflow::studio::app::{App, Failed, Loaded, Msg, Pane, Settings, Tab};
use graflow::studio::graph::layout;
use graflow::studio::theme::Theme;
use graflow_engine::file::{Diagnostic, Severity};
use graflow_engine::{EventKind, LogStream};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use studio_support::*;

/// An app showing `etl` after its failed run, with `view` and focus on `pane`.
fn failed_etl() -> App {
    let mut a = after_run(&[etl(), looping()], etl_failed_run);
    a.message = None;
    a.effects.clear();
    // As after `enter` on the workflow: the graph has the focus.
    a.focus = Pane::Graph;
    a
}

fn with_layout(mut a: App) -> App {
    let view = a
        .entry()
        .map(|e| e.graph.canvas_view.clone())
        .unwrap_or_default();
    a.update(Action::ViewCanvas);
    a.on_msg(Msg::Layout {
        index: a.workflows.selected,
        layout: Arc::new(layout::compute(&view)),
    });
    a
}

macro_rules! snap_two_sizes {
    ($name:ident, $make:expr) => {
        #[test]
        fn $name() {
            for (w, h) in [(100u16, 30u16), (60, 20)] {
                let mut a: App = $make;
                a.update(Action::Resize(w, h));
                insta::assert_snapshot!(format!("{}_{w}x{h}", stringify!($name)), render(&a, w, h));
            }
        }
    };
}

snap_two_sizes!(list_after_a_failed_run, failed_etl());

snap_two_sizes!(canvas_boxes, with_layout(failed_etl()));

snap_two_sizes!(canvas_pills_with_a_loop, {
    let mut a = failed_etl();
    a.update(Action::SelectWorkflow(1));
    let mut a = with_layout(a);
    a.update(Action::ZoomOut);
    a
});

snap_two_sizes!(canvas_dots, {
    let mut a = with_layout(failed_etl());
    a.update(Action::ZoomOut);
    a.update(Action::ZoomOut);
    a
});

snap_two_sizes!(timeline, {
    let mut a = failed_etl();
    a.update(Action::ViewTimeline);
    a
});

snap_two_sizes!(task_detail_with_log, {
    let mut a = failed_etl();
    a.focus = Pane::Inspector;
    a
});

snap_two_sizes!(task_log_search, {
    let mut a = failed_etl();
    a.focus = Pane::Inspector;
    a.update(Action::Search);
    for c in "row 2".chars() {
        a.update(Action::InputChar(c));
    }
    a.update(Action::InputSubmit);
    a
});

snap_two_sizes!(channel_tab, {
    let mut a = failed_etl();
    a.inspector.tab = Tab::Channel;
    a
});

snap_two_sizes!(events_tab, {
    let mut a = failed_etl();
    a.inspector.tab = Tab::Events;
    a
});

snap_two_sizes!(help, {
    let mut a = failed_etl();
    a.update(Action::ToggleHelp);
    a
});

snap_two_sizes!(invalid_file_keeps_the_last_good_graph, {
    let mut a = app();
    a.on_msg(Msg::Discovered(vec![
        PathBuf::from("/flows/etl.ron"),
        PathBuf::from("/flows/broken.ron"),
    ]));
    a.on_msg(Msg::Loaded {
        index: 0,
        generation: 1,
        result: Ok(Loaded {
            workflow: etl(),
            warnings: vec![],
            scripts: vec![],
            setup: None,
        }),
    });
    let diag = |line, column, message: &str, hint: Option<&str>| Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from("/flows/x.ron"),
        line,
        column,
        message: message.into(),
        hint: hint.map(Into::into),
    };
    a.on_msg(Msg::Loaded {
        index: 1,
        generation: 1,
        result: Err(Failed {
            diagnostics: vec![diag(3, 9, "expected a string", None)],
            missing: false,
        }),
    });
    a.on_msg(Msg::FilesChanged(vec![PathBuf::from("/flows/etl.ron")]));
    a.on_msg(Msg::Loaded {
        index: 0,
        generation: 2,
        result: Err(Failed {
            diagnostics: vec![diag(
                7,
                14,
                "unknown task 'mrege' in the flow",
                Some("did you mean 'merge'?"),
            )],
            missing: false,
        }),
    });
    // The list sorts broken.ron first; open etl.ron's graph.
    a.update(Action::SelectWorkflow(0));
    a.focus = Pane::Graph;
    a.effects.clear();
    a
});

snap_two_sizes!(no_workflows, app());

snap_two_sizes!(running_with_live_clock, {
    let mut a = app();
    a.add_workflow(etl());
    a.update(Action::Run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    a.on_msg(Msg::Engine(vec![
        ev(
            &id,
            0,
            EventKind::RunStarted {
                workflow: "etl".into(),
                start: "fetch".into(),
                resumed_from: None,
            },
        ),
        ev(
            &id,
            100,
            EventKind::TaskStarted {
                task: "fetch".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
        ev(
            &id,
            150,
            EventKind::TaskLog {
                worker: None,
                task: "fetch".into(),
                stream: LogStream::Log,
                line: "downloading…".into(),
            },
        ),
    ]));
    a.now = at(2_600);
    a.focus = Pane::Graph;
    a
});

#[test]
fn status_colours_in_the_list() {
    let mut a = App::new(Settings {
        theme: Theme::dark(),
        ..Settings::default()
    });
    a.now = at(1_000);
    a.add_workflow(etl());
    a.update(Action::Run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    a.on_msg(Msg::Engine(etl_failed_run(&id)));
    a.message = None;
    a.zoomed = true;
    a.focus = Pane::Graph;
    a.update(Action::Resize(36, 12));
    let mut t = Terminal::new(TestBackend::new(36, 12)).unwrap_or_else(|e| panic!("{e}"));
    t.draw(|f| graflow::studio::ui::draw(f, &a))
        .unwrap_or_else(|e| panic!("{e}"));
    insta::assert_debug_snapshot!(t.backend().buffer());
}

#[test]
fn no_color_uses_no_colour() {
    let mut a = App::new(Settings {
        theme: Theme::monochrome(),
        ..Settings::default()
    });
    a.add_workflow(etl());
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap_or_else(|e| panic!("{e}"));
    t.draw(|f| graflow::studio::ui::draw(f, &a))
        .unwrap_or_else(|e| panic!("{e}"));
    for cell in t.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
}

/// The inbox with one request of each kind, `index` selected; `answer` types into its form.
fn inbox(index: usize, answer: impl FnOnce(&mut App)) -> App {
    let mut a = app();
    a.add_workflow(etl());
    a.update(Action::ToggleInbox);
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    a.now = at(130_000);
    for _ in 0..index {
        a.update(Action::Down);
    }
    answer(&mut a);
    a.effects.clear();
    a
}

fn type_text(a: &mut App, text: &str) {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    for c in text.chars() {
        let k = if c == '\n' {
            KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
        } else {
            KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
        };
        a.update(Action::AnswerKey(k));
    }
}

snap_two_sizes!(
    inbox_approval_rejected_with_a_reason,
    inbox(0, |a| {
        a.update(Action::Reject);
        type_text(a, "not on a friday");
        a.update(Action::SubmitAnswer);
        a.on_msg(Msg::Responded {
            id: "approve".into(),
            result: Err("feedback request 'approve' is answered, not pending".into()),
        });
        a.message = None;
    })
);

snap_two_sizes!(
    inbox_text_box,
    inbox(1, |a| {
        a.update(Action::AnswerRequest);
        type_text(a, "Lighthouse\nthe autumn release");
    })
);

snap_two_sizes!(
    inbox_pick_one,
    inbox(2, |a| {
        a.update(Action::AnswerRequest);
        a.update(Action::Down);
    })
);

snap_two_sizes!(
    inbox_pick_many,
    inbox(3, |a| {
        a.update(Action::AnswerRequest);
        a.update(Action::ToggleOption);
        a.update(Action::Down);
        a.update(Action::Down);
        a.update(Action::ToggleOption);
    })
);

snap_two_sizes!(
    inbox_json_that_does_not_parse,
    inbox(4, |a| {
        a.update(Action::AnswerRequest);
        type_text(a, "{\"rps\": 10,}");
        a.update(Action::SubmitAnswer);
    })
);

snap_two_sizes!(inbox_empty, {
    let mut a = app();
    a.update(Action::ToggleInbox);
    a.on_msg(Msg::Inbox(Ok(Vec::new())));
    a.effects.clear();
    a
});

snap_two_sizes!(checkpoint_browser, {
    use graflow::runsetup::WorkflowFile;
    use graflow::studio::screens::checkpoints::CheckpointDetail;
    use graflow_engine::checkpoint::Reason;
    let mut a = app();
    a.update(Action::ToggleCheckpoints);
    a.on_msg(Msg::Checkpoints(vec![
        checkpoint_info(
            3,
            "release",
            "2026-11-28T14:34:10.5Z",
            Reason::Feedback,
            Some("approve"),
        ),
        checkpoint_info(2, "release", "2026-11-28T14:33:02Z", Reason::Host, None),
        checkpoint_info(
            1,
            "etl",
            "2026-11-28T14:30:45Z",
            Reason::Deferred,
            Some("merge"),
        ),
    ]));
    a.on_msg(Msg::CheckpointDetail {
        path: "/state/checkpoints/release-0193a1b2c3d4e-003.ckpt".into(),
        result: Ok(CheckpointDetail {
            channel: [
                ("approved".to_string(), serde_json::json!(false)),
                ("version".to_string(), serde_json::json!("1.4.0")),
            ]
            .into(),
            pending: vec!["approve".into(), "window".into()],
            results: [("build".to_string(), serde_json::json!({"version": "1.4.0"}))].into(),
            cycles: [("build".to_string(), 1)].into(),
            file: WorkflowFile::Changed("/flows/release.ron".into()),
            open_requests: 1,
        }),
    });
    a.effects.clear();
    a
});

// A checkpoint stored compressed says so, with its ratio, in the browser's detail.
snap_two_sizes!(checkpoint_browser_compressed, {
    use graflow::runsetup::WorkflowFile;
    use graflow::studio::screens::checkpoints::CheckpointDetail;
    use graflow_engine::checkpoint::Reason;
    let mut a = app();
    a.update(Action::ToggleCheckpoints);
    let mut big = checkpoint_info(4, "etl", "2026-11-28T15:02:11Z", Reason::Host, None);
    big.schema_version = 2;
    big.size_bytes = 1_310_720;
    big.content_bytes = Some(12_582_912);
    a.on_msg(Msg::Checkpoints(vec![big]));
    a.on_msg(Msg::CheckpointDetail {
        path: "/state/checkpoints/etl-0193a1b2c3d4e-004.ckpt".into(),
        result: Ok(CheckpointDetail {
            channel: [("rows".to_string(), serde_json::json!(10_000))].into(),
            pending: vec!["merge".into()],
            results: [("extract".to_string(), serde_json::json!(10_000))].into(),
            cycles: [("extract".to_string(), 1)].into(),
            file: WorkflowFile::Unchanged("/flows/etl.ron".into()),
            open_requests: 0,
        }),
    });
    a.effects.clear();
    a
});

// ---- A newcomer's first hour (issue 11) ----

/// Workflow files under /flows, discovered out of order, all loaded.
fn three_files() -> App {
    let mut a = app();
    a.on_msg(Msg::Discovered(vec![
        PathBuf::from("/flows/looping.ron"),
        PathBuf::from("/flows/etl.ron"),
    ]));
    // A file added while the studio runs takes its place by path, not the end.
    a.on_msg(Msg::Discovered(vec![PathBuf::from("/flows/audit.ron")]));
    for (index, wf) in [(0, looping()), (1, etl()), (2, looping())] {
        a.on_msg(Msg::Loaded {
            index,
            generation: 1,
            result: Ok(Loaded {
                workflow: wf,
                warnings: vec![],
                scripts: vec![],
                setup: None,
            }),
        });
    }
    a.effects.clear();
    a
}

snap_two_sizes!(workflows_sorted_and_filtered, {
    let mut a = three_files();
    a.update(Action::Search);
    for c in "lo".chars() {
        a.update(Action::InputChar(c));
    }
    a.update(Action::InputSubmit);
    a
});

snap_two_sizes!(quit_asks_while_a_run_goes_on, {
    let mut a = app();
    a.add_workflow(etl());
    a.update(Action::Run);
    a.update(Action::Quit);
    a
});

/// A workflow with a long title and a long task name; a task added at run time.
fn long_names() -> App {
    let mut wf = graflow_engine::Workflow::builder(
        "a-workflow-with-a-name-far-too-long-for-any-title-bar-at-all",
    );
    for id in ["start", "a_task_with_a_very_long_name_indeed", "end"] {
        wf.add(graflow_engine::TaskDef::from_fn(id, |_ctx| async {
            anyhow::Ok(graflow_engine::Value::Null)
        }));
    }
    wf.flow_str("start >> a_task_with_a_very_long_name_indeed >> end");
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let mut a = app();
    a.add_workflow(wf);
    a.update(Action::Run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    a.on_msg(Msg::Engine(vec![
        ev(
            &id,
            0,
            EventKind::RunStarted {
                workflow: "long".into(),
                start: "start".into(),
                resumed_from: None,
            },
        ),
        ev(
            &id,
            5,
            EventKind::GraphChanged {
                added: vec!["extra_step".into()],
                by: "start".into(),
            },
        ),
        ev(
            &id,
            6,
            EventKind::TaskStarted {
                task: "extra_step".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
    ]));
    a.focus = Pane::Graph;
    a.effects.clear();
    a
}

snap_two_sizes!(
    canvas_long_names_and_a_task_added_at_run_time,
    with_layout(long_names())
);

snap_two_sizes!(canvas_a_small_graph_after_panning_and_zooming, {
    let mut a = failed_etl();
    a.update(Action::SelectWorkflow(1));
    let mut a = with_layout(a);
    for _ in 0..6 {
        a.update(Action::PanDown);
        a.update(Action::PanRight);
    }
    a.update(Action::ZoomOut);
    a.update(Action::ZoomIn);
    a
});

snap_two_sizes!(inbox_pick_one_hints_no_approve, inbox(2, |_| {}));

snap_two_sizes!(read_only_hints_no_run, {
    let mut a = App::new(Settings {
        read_only: true,
        ..Settings::default()
    });
    a.screen = (100, 30);
    a.add_workflow(etl());
    a.focus = Pane::Graph;
    a
});

snap_two_sizes!(task_error_wrapped_with_w, {
    let mut a = app();
    a.add_workflow(etl());
    let id = {
        a.update(Action::Run);
        a.entry()
            .and_then(|e| e.run.as_ref())
            .map(|r| r.run_id.clone())
            .unwrap_or_default()
    };
    let long = "the upstream service answered 503 Service Unavailable after 30 seconds; \
                the request was GET /v1/customers?page=7 and it will be retried";
    a.on_msg(Msg::Engine(vec![
        ev(
            &id,
            10,
            EventKind::TaskStarted {
                task: "fetch".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
        ev(
            &id,
            20,
            EventKind::TaskFailed {
                worker: None,
                task: "fetch".into(),
                error: long.into(),
                attempt: 0,
                will_retry: true,
            },
        ),
    ]));
    a.focus = Pane::Inspector;
    a.update(Action::ToggleWrap);
    a
});

snap_two_sizes!(events_of_a_fast_run, {
    let mut a = app();
    a.add_workflow(etl());
    a.update(Action::Run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    // A whole run within a millisecond: the times still tell the events apart.
    let at_us = |us: u64, kind| graflow_engine::RunEvent {
        run_id: id.as_str().into(),
        ts: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(us),
        kind,
    };
    a.on_msg(Msg::Engine(vec![
        at_us(
            0,
            EventKind::RunStarted {
                workflow: "etl".into(),
                start: "fetch".into(),
                resumed_from: None,
            },
        ),
        at_us(
            40,
            EventKind::TaskStarted {
                task: "fetch".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
        at_us(
            310,
            EventKind::TaskSucceeded {
                worker: None,
                task: "fetch".into(),
                result: serde_json::json!(3),
                duration_ms: 0.27,
                cycle: 1,
            },
        ),
    ]));
    a.focus = Pane::Inspector;
    a.inspector.tab = Tab::Events;
    a
});

/// A live run of a workflow with pools: waiting tasks in the list, and the Pools tab with each
/// pool's slots in use, its waiting tasks and its rate.
fn limited_live() -> App {
    let mut a = after_run(&[limited()], limited_run);
    a.message = None;
    a.effects.clear();
    a.focus = Pane::Graph;
    a
}

snap_two_sizes!(waiting_tasks_in_the_list, {
    let mut a = limited_live();
    // Select call2, a waiting task: the inspector says why it waits.
    for _ in 0..4 {
        a.update(Action::Down);
    }
    a
});

snap_two_sizes!(pools_tab, {
    let mut a = limited_live();
    a.update(Action::NextTab);
    a.update(Action::NextTab);
    a.update(Action::NextTab);
    assert_eq!(
        a.inspector.tab,
        Tab::Pools,
        "the fourth tab of a workflow with pools"
    );
    a
});

// ---- Japanese names: two cells a character, drawn aligned (issue 14) ----

/// `japanese()` after its failed run next to `etl`, the graph focused, as after `enter`.
fn japanese_failed() -> App {
    let mut a = after_run(&[japanese(), etl()], japanese_failed_run);
    a.message = None;
    a.effects.clear();
    a.focus = Pane::Graph;
    a
}

snap_two_sizes!(japanese_list_and_inspector, japanese_failed());

snap_two_sizes!(japanese_canvas_boxes, with_layout(japanese_failed()));

snap_two_sizes!(japanese_timeline, {
    let mut a = japanese_failed();
    a.update(Action::ViewTimeline);
    a
});

snap_two_sizes!(japanese_channel_tab, {
    let mut a = japanese_failed();
    a.inspector.tab = Tab::Channel;
    a
});

snap_two_sizes!(japanese_workflows_list, {
    let mut a = japanese_failed();
    a.focus = Pane::Workflows;
    a
});
