//! Pure update tests: actions and messages in, state and effects out. No terminal, no engine.

use crate::studio_support;

use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use graflow::studio::action::{Action, REGISTRY};
use graflow::studio::app::{
    App, Effect, Failed, GraphView, Level, Loaded, Msg, Overlay, Pane, Settings, Tab,
};
use graflow::studio::graph::layout;
use graflow::studio::model::{LoadState, RunPhase, TaskStatus, WorkflowEntry};
use graflow_engine::file::{Diagnostic, Severity};
use graflow_engine::{EventKind, LogStream};
use studio_support::*;

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn started(app: &mut App) -> String {
    app.update(Action::Run);
    app.entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default()
}

fn effects(app: &mut App) -> Vec<Effect> {
    std::mem::take(&mut app.effects)
}

#[test]
fn keys_map_through_the_context() {
    let mut a = app();
    a.add_workflow(etl());
    a.focus = Pane::Graph;
    assert_eq!(a.key_action(&key('f')), Some(Action::ToggleFocusMode));
    a.focus = Pane::Inspector;
    assert_eq!(a.key_action(&key('f')), Some(Action::ToggleFollow));
    assert_eq!(a.key_action(&key('q')), Some(Action::Quit));
    a.update(Action::ToggleHelp);
    assert!(matches!(a.overlay, Some(Overlay::Help { .. })));
    // In the help, j scrolls and r does nothing.
    assert_eq!(a.key_action(&key('j')), Some(Action::Down));
    assert_eq!(a.key_action(&key('r')), None);
    a.update(Action::Down);
    assert_eq!(a.overlay, Some(Overlay::Help { scroll: 1 }));
    a.update(Action::Back);
    assert_eq!(a.overlay, None);
    a.update(Action::Quit);
    assert!(a.quit);
}

#[test]
fn run_starts_once_and_cancel_asks_first() {
    let mut a = app();
    a.add_workflow(etl());
    effects(&mut a);
    let run_id = started(&mut a);
    let fx = effects(&mut a);
    assert!(
        matches!(&fx[..], [Effect::StartRun { run_id: r, .. }, ..] if *r == run_id),
        "{fx:?}"
    );
    a.update(Action::Run);
    assert!(effects(&mut a).is_empty(), "a second run while one goes on");
    assert!(
        a.message
            .as_ref()
            .is_some_and(|m| m.0.contains("already running"))
    );

    a.update(Action::Cancel);
    assert!(matches!(a.overlay, Some(Overlay::Confirm(_))));
    assert_eq!(a.key_action(&key('n')), Some(Action::Deny));
    a.update(Action::Deny);
    assert!(a.overlay.is_none() && effects(&mut a).is_empty());
    a.update(Action::Cancel);
    a.update(Action::Confirm);
    assert!(matches!(&effects(&mut a)[..], [Effect::CancelRun(r)] if *r == run_id));
}

#[test]
fn read_only_refuses_runs_and_hides_them() {
    let mut a = App::new(Settings {
        read_only: true,
        ..Settings::default()
    });
    a.add_workflow(etl());
    effects(&mut a);
    a.update(Action::Run);
    assert!(effects(&mut a).is_empty());
    assert!(matches!(&a.message, Some((m, Level::Error)) if m.contains("read-only")));
    a.update(Action::Cancel);
    assert!(a.overlay.is_none());
    let help = render(
        &{
            a.update(Action::ToggleHelp);
            a
        },
        100,
        60,
    );
    assert!(!help.contains("Run the selected workflow"), "{help}");
    assert!(help.contains("Leave the studio"));
}

#[test]
fn events_fold_and_a_failure_opens_the_failed_task() {
    let mut a = app();
    a.add_workflow(etl());
    let id = started(&mut a);
    effects(&mut a);
    a.inspector.tab = Tab::Events;
    a.on_msg(Msg::Engine(etl_failed_run(&id)));
    let e = a.entry().unwrap_or_else(|| panic!("no entry"));
    let run = e.run.as_ref().unwrap_or_else(|| panic!("no run"));
    assert_eq!(run.status_of("fetch"), TaskStatus::Succeeded);
    assert_eq!(run.status_of("clean_b"), TaskStatus::Failed);
    assert_eq!(run.status_of("merge"), TaskStatus::Pending);
    assert!(matches!(run.phase, RunPhase::Finished(_)));
    assert_eq!(
        e.graph.selected.as_deref(),
        Some("clean_b"),
        "the failed task is selected"
    );
    assert_eq!(a.inspector.tab, Tab::Task, "its detail shows");
    assert!(matches!(&a.message, Some((m, Level::Error)) if m.contains("run failed")));
    assert!(
        effects(&mut a)
            .iter()
            .any(|e| matches!(e, Effect::RefreshHistory))
    );
    // Events of an unknown run change nothing.
    a.on_msg(Msg::Engine(etl_failed_run("someone-else")));
    assert_eq!(
        a.entry()
            .and_then(|e| e.run.as_ref())
            .map(|r| r.events.len()),
        Some(14)
    );
}

#[test]
fn tasks_added_at_run_time_appear_in_the_list() {
    let mut a = app();
    a.add_workflow(etl());
    let id = started(&mut a);
    let before = a.entry().map_or(0, |e| e.graph.lanes.rows.len());
    a.on_msg(Msg::Engine(vec![
        ev(
            &id,
            1,
            EventKind::GraphChanged {
                added: vec!["extra_1".into(), "extra_2".into()],
                by: "merge".into(),
            },
        ),
        ev(
            &id,
            2,
            EventKind::TaskStarted {
                task: "extra_1".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
    ]));
    let g = &a.entry().unwrap_or_else(|| panic!("no entry")).graph;
    assert_eq!(g.lanes.rows.len(), before + 2);
    let extra = g.model.find("extra_1").unwrap_or(usize::MAX);
    assert!(g.model.nodes[extra].dynamic);
    let merge_row = g.lanes.row_of[&g.model.find("merge").unwrap_or(0)];
    assert!(g.lanes.row_of[&extra] > merge_row);
}

fn file_entry(a: &mut App, path: &str) -> usize {
    a.on_msg(Msg::Discovered(vec![PathBuf::from(path)]));
    a.workflows.entries.len() - 1
}

#[test]
fn hot_reload_keeps_the_last_good_graph_and_the_selection() {
    let mut a = app();
    let i = file_entry(&mut a, "/flows/etl.ron");
    let fx = effects(&mut a);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Load { index, generation: 1, .. } if *index == i))
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::Watch(_))));
    a.on_msg(Msg::Loaded {
        index: i,
        generation: 1,
        result: Ok(Loaded {
            workflow: etl(),
            warnings: vec![],
            scripts: vec![PathBuf::from("/flows/merge.rhai")],
            setup: None,
        }),
    });
    assert_eq!(a.workflows.entries[i].state, LoadState::Ready);
    a.focus = Pane::Graph;
    a.update(Action::SelectNode("merge".into()));

    // A save of the script reloads the workflow.
    effects(&mut a);
    a.on_msg(Msg::FilesChanged(vec![PathBuf::from("/flows/merge.rhai")]));
    assert!(matches!(
        &effects(&mut a)[..],
        [Effect::Load { generation: 2, .. }]
    ));
    // An invalid edit: error with line:col, graph and selection kept.
    let diag = Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from("/flows/etl.ron"),
        line: 7,
        column: 14,
        message: "unknown task 'mrege' in the flow".into(),
        hint: Some("did you mean 'merge'?".into()),
    };
    a.on_msg(Msg::Loaded {
        index: i,
        generation: 2,
        result: Err(Failed {
            diagnostics: vec![diag],
            missing: false,
        }),
    });
    let e = &a.workflows.entries[i];
    assert_eq!(e.state, LoadState::Invalid);
    assert_eq!(
        e.first_error().as_deref(),
        Some("7:14: unknown task 'mrege' in the flow")
    );
    assert_eq!(e.graph.model.len(), 7);
    assert_eq!(e.graph.selected.as_deref(), Some("merge"));
    let screen = render(&a, 100, 30);
    assert!(
        screen.contains("etl.ron:7:14: unknown task 'mrege'"),
        "{screen}"
    );
    assert!(screen.contains("did you mean 'merge'?"));
    // A stale result (an older load) is dropped.
    a.on_msg(Msg::Loaded {
        index: i,
        generation: 1,
        result: Ok(Loaded {
            workflow: looping(),
            warnings: vec![],
            scripts: vec![],
            setup: None,
        }),
    });
    assert_eq!(a.workflows.entries[i].state, LoadState::Invalid);
    // The fix: a new graph, the selection kept by id.
    a.on_msg(Msg::FilesChanged(vec![PathBuf::from("/flows/etl.ron")]));
    a.on_msg(Msg::Loaded {
        index: i,
        generation: 3,
        result: Ok(Loaded {
            workflow: etl(),
            warnings: vec![],
            scripts: vec![],
            setup: None,
        }),
    });
    assert_eq!(a.workflows.entries[i].state, LoadState::Ready);
    assert_eq!(
        a.workflows.entries[i].graph.selected.as_deref(),
        Some("merge")
    );
    // A deleted file keeps the graph and says so.
    a.on_msg(Msg::FilesChanged(vec![PathBuf::from("/flows/etl.ron")]));
    let generation = a.workflows.entries[i].generation;
    a.on_msg(Msg::Loaded {
        index: i,
        generation,
        result: Err(Failed {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: "/flows/etl.ron".into(),
                line: 0,
                column: 0,
                message: "the file was deleted".into(),
                hint: None,
            }],
            missing: true,
        }),
    });
    assert_eq!(a.workflows.entries[i].state, LoadState::Deleted);
    assert_eq!(a.workflows.entries[i].graph.model.len(), 7);
    a.update(Action::Run);
    assert!(matches!(&a.message, Some((m, Level::Error)) if m.contains("deleted")));
}

#[test]
fn the_canvas_asks_for_one_layout_and_drops_stale_ones() {
    let mut a = app();
    a.add_workflow(etl());
    effects(&mut a);
    a.update(Action::ViewCanvas);
    let fx = effects(&mut a);
    let view = match &fx[..] {
        [Effect::Layout { index: 0, view }] => view.clone(),
        other => panic!("expected one layout request, got {other:?}"),
    };
    a.update(Action::ViewList);
    a.update(Action::ViewCanvas);
    assert!(
        effects(&mut a).is_empty(),
        "the same structure is not laid out twice"
    );
    // Collapse the group: a new structure, a new request; the old result is stale.
    a.update(Action::SelectNode("cleaners".into()));
    a.update(Action::ToggleGroup);
    assert!(matches!(&effects(&mut a)[..], [Effect::Layout { .. }]));
    a.on_msg(Msg::Layout {
        index: 0,
        layout: Arc::new(layout::compute(&view)),
    });
    assert!(
        a.entry().is_some_and(|e| e.graph.layout.is_none()),
        "stale layout dropped"
    );
    let current = a
        .entry()
        .map(|e| e.graph.canvas_view.clone())
        .unwrap_or_default();
    a.on_msg(Msg::Layout {
        index: 0,
        layout: Arc::new(layout::compute(&current)),
    });
    assert!(a.entry().is_some_and(|e| e.graph.layout_is_current()));
}

#[test]
fn groups_collapse_and_focus_narrows() {
    let mut a = app();
    a.add_workflow(etl());
    a.focus = Pane::Graph;
    let rows = |a: &App| a.entry().map_or(0, |e| e.graph.lanes.rows.len());
    assert_eq!(rows(&a), 7);
    a.update(Action::SelectNode("enrich".into()));
    a.update(Action::ToggleGroup);
    assert_eq!(rows(&a), 4, "a member collapses its group");
    assert_eq!(
        a.entry().and_then(|e| e.graph.selected.clone()).as_deref(),
        Some("cleaners")
    );
    a.update(Action::ToggleGroup);
    assert_eq!(rows(&a), 7);
    a.update(Action::SelectNode("load".into()));
    a.update(Action::ToggleFocusMode);
    assert_eq!(rows(&a), 2, "load and merge");
    a.update(Action::FocusDepth);
    // Two steps from load: merge, then the group and the ends of its member chains (their
    // lanes close into merge, as on the canvas).
    assert_eq!(rows(&a), 5);
    a.update(Action::Back);
    assert_eq!(rows(&a), 7);
}

#[test]
fn the_log_follows_filters_and_searches() {
    let mut a = app();
    a.add_workflow(etl());
    let id = started(&mut a);
    let mut evs = vec![ev(
        &id,
        0,
        EventKind::TaskStarted {
            task: "fetch".into(),
            cycle: 1,
            attempt: 0,
        },
    )];
    for i in 0..50 {
        let (stream, line) = if i % 10 == 3 {
            (LogStream::Stderr, format!("warning {i}"))
        } else {
            (LogStream::Stdout, format!("row {i} ok"))
        };
        evs.push(ev(
            &id,
            i + 1,
            EventKind::TaskLog {
                worker: None,
                task: "fetch".into(),
                stream,
                line,
            },
        ));
    }
    a.on_msg(Msg::Engine(evs));
    a.update(Action::SelectNode("fetch".into()));
    a.focus = Pane::Inspector;
    assert!(a.inspector.log.follow);
    assert_eq!(a.log_lines().len(), 50);
    a.update(Action::Up);
    assert!(!a.inspector.log.follow);
    assert_eq!(a.inspector.log.cursor, 48);
    a.update(Action::End);
    assert!(a.inspector.log.follow);
    a.update(Action::ToggleErrorsOnly);
    assert_eq!(a.log_lines().len(), 5);
    a.update(Action::ToggleErrorsOnly);
    a.update(Action::Search);
    for c in "ROW 2".chars() {
        a.update(Action::InputChar(c));
    }
    a.update(Action::InputSubmit);
    assert_eq!(a.inspector.log.search.as_deref(), Some("row 2"));
    assert_eq!(a.log_lines()[a.inspector.log.cursor].text, "row 2 ok");
    a.update(Action::SearchNext);
    assert_eq!(a.log_lines()[a.inspector.log.cursor].text, "row 20 ok");
    a.update(Action::SearchPrev);
    assert_eq!(a.log_lines()[a.inspector.log.cursor].text, "row 2 ok");
    a.update(Action::Copy);
    assert_eq!(a.copied.as_deref(), Some("row 2 ok"));
    assert!(matches!(&effects(&mut a)[..], [.., Effect::Copy(t)] if t == "row 2 ok"));
    a.update(Action::Back);
    assert_eq!(a.inspector.log.search, None);
}

#[test]
fn the_mouse_selects_and_can_be_turned_off() {
    let mut a = app();
    a.add_workflow(etl());
    a.add_workflow(looping());
    let click = |x, y| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    // Row 2 of the screen is the second workflow (row 0 is the border).
    let act = a.mouse_action(&click(3, 2)).unwrap_or(Action::Quit);
    a.update(act);
    assert_eq!(a.focus, Pane::Workflows);
    assert_eq!(a.workflows.selected, 1);
    a.update(Action::ToggleMouse);
    assert!(matches!(
        &effects(&mut a)[..],
        [.., Effect::SetMouse(false)]
    ));
    assert_eq!(a.mouse_action(&click(3, 1)), None);
}

#[test]
fn every_action_on_a_tiny_screen_is_harmless() {
    let mut a = app();
    a.add_workflow(etl());
    a.workflows
        .entries
        .push(WorkflowEntry::from_path(PathBuf::from(
            "/nowhere/broken.ron",
        )));
    a.update(Action::Resize(20, 5));
    for view in [GraphView::List, GraphView::Canvas, GraphView::Timeline] {
        a.graph.view = view;
        for info in REGISTRY {
            for _ in 0..2 {
                a.update(info.id.action());
                a.quit = false;
                let _ = render(&a, 20, 5);
                let _ = render(&a, 1, 1);
            }
        }
        for act in [
            Action::Click(5, 2),
            Action::ScrollAt(5, 2, 3),
            Action::SelectWorkflow(9),
            Action::SelectNode("nope".into()),
        ] {
            a.update(act);
        }
    }
}

#[test]
fn settings_come_from_the_config_file_and_flags() {
    use graflow::studio::{StudioArgs, settings};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("config.ron");
    std::fs::write(&config, r#"(theme: "light", mouse: false, log_wrap: true, keys: {"run": ["ctrl-r"], "nope": ["x"]})"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let args = StudioArgs {
        config: Some(config.clone()),
        ..StudioArgs::default()
    };
    let (s, notes) = settings(&args).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        assert!(s.theme.monochrome);
    } else {
        assert_eq!(s.theme.name, "light");
    }
    assert!(!s.mouse && s.log_wrap && s.log_follow);
    assert_eq!(
        notes,
        vec!["config: keys: no action named 'nope'".to_string()]
    );
    let mut a = App::new(s);
    a.add_workflow(etl());
    assert_eq!(a.key_action(&key('r')), None);
    assert_eq!(
        a.key_action(&KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL)),
        Some(Action::Run)
    );
    // The flag wins over the file; a theme that does not exist is an error.
    let args = StudioArgs {
        config: Some(config.clone()),
        read_only: true,
        theme: Some("no-such".into()),
        ..StudioArgs::default()
    };
    if std::env::var_os("NO_COLOR").is_none() {
        assert!(settings(&args).is_err_and(|e| e.contains("no theme 'no-such'")));
    }
    // A config file that does not parse names its line and column.
    std::fs::write(&config, "(theme: 3)").unwrap_or_else(|e| panic!("{e}"));
    let args = StudioArgs {
        config: Some(config.clone()),
        ..StudioArgs::default()
    };
    assert!(settings(&args).is_err_and(|e| e.contains("config.ron:1:")));
}

#[test]
fn slash_in_the_graph_finds_nodes() {
    let mut a = app();
    a.add_workflow(etl());
    a.focus = Pane::Graph;
    assert_eq!(a.key_action(&key('/')), Some(Action::Search));
    a.update(Action::Search);
    assert_eq!(a.focus, Pane::Graph, "the find stays in the graph");
    assert_eq!(a.key_action(&key('c')), Some(Action::InputChar('c')));
    for c in "CLEAN".chars() {
        a.update(Action::InputChar(c));
    }
    assert!(render(&a, 100, 30).contains("find node: /CLEAN"));
    a.update(Action::InputSubmit);
    let selected = |a: &App| {
        a.entry()
            .and_then(|e| e.graph.selected.clone())
            .unwrap_or_default()
    };
    assert_eq!(&*selected(&a), "cleaners");
    a.update(Action::SearchNext);
    assert_eq!(&*selected(&a), "clean_a");
    a.update(Action::SearchNext);
    assert_eq!(&*selected(&a), "clean_b");
    a.update(Action::SearchNext);
    assert_eq!(&*selected(&a), "cleaners", "wraps around");
    a.update(Action::SearchPrev);
    assert_eq!(&*selected(&a), "clean_b");
    assert!(render(&a, 100, 30).contains("find /clean"));
    a.update(Action::Back);
    assert_eq!(a.graph.find, None);
    a.update(Action::Search);
    for c in "zzz".chars() {
        a.update(Action::InputChar(c));
    }
    a.update(Action::InputSubmit);
    assert!(
        a.message
            .as_ref()
            .is_some_and(|m| m.0.contains("no node matches 'zzz'"))
    );
}

#[test]
fn a_question_and_a_pause_say_what_to_do() {
    let mut a = app();
    a.add_workflow(etl());
    let id = started(&mut a);
    a.on_msg(Msg::Engine(vec![ev(
        &id,
        5,
        EventKind::FeedbackRequested {
            id: "fb-1".into(),
            task: "merge".into(),
            kind: "approval".into(),
            prompt: "Ship it?".into(),
        },
    )]));
    assert!(
        matches!(&a.message, Some((m, Level::Info)) if m.contains("merge asks: Ship it?") && m.contains("a opens the inbox"))
    );
    a.on_msg(Msg::Engine(vec![ev(
        &id,
        9,
        EventKind::RunFinished {
            status: graflow_engine::RunStatus::Paused,
            error: None,
            result: None,
            results: Default::default(),
            channel: Default::default(),
            checkpoint: Some("/state/checkpoints/etl.ckpt".into()),
        },
    )]));
    assert!(
        matches!(&a.message, Some((m, Level::Info)) if m.contains("run paused") && m.contains("a opens the inbox, then it resumes"))
    );
    assert!(render(&a, 100, 30).contains("⏸ etl"));
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn special(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Press keys the way the event loop does: key → action → update.
fn press(a: &mut App, keys: &[KeyEvent]) {
    for k in keys {
        if let Some(action) = a.key_action(k) {
            a.update(action);
        }
    }
}

fn typed(text: &str) -> Vec<KeyEvent> {
    text.chars().map(key).collect()
}

fn responds(fx: &[Effect]) -> Vec<(String, graflow_engine::hitl::Answer)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::RespondFeedback { id, answer } => Some((id.clone(), answer.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_inbox_answers_every_kind_with_its_own_form() {
    use graflow::studio::action::Context;
    let mut a = app();
    a.add_workflow(etl());
    effects(&mut a);
    press(&mut a, &[key('a')]);
    assert_eq!(a.context(), Context::Inbox);
    assert!(
        effects(&mut a)
            .iter()
            .any(|e| matches!(e, Effect::RefreshInbox))
    );
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    assert_eq!(a.pending_requests(), 5);

    // Approval: y approves at once.
    press(&mut a, &[key('y')]);
    let sent = responds(&effects(&mut a));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "approve");
    assert_eq!(sent[0].1.approved, Some(true));
    assert_eq!(a.context(), Context::Inbox, "approving needs no typing");

    // The engine refuses: the message shows, the form keeps what was written.
    a.on_msg(Msg::Responded {
        id: "approve".into(),
        result: Err("feedback request 'approve' is answered, not pending".into()),
    });
    let form = a
        .inbox
        .form_for_selected()
        .unwrap_or_else(|| panic!("no form"));
    assert!(
        form.error
            .as_deref()
            .is_some_and(|e| e.contains("not pending"))
    );
    assert!(!form.sending);

    // n rejects with a reason typed in the text box.
    press(&mut a, &[key('n')]);
    assert_eq!(a.context(), Context::Answer);
    press(&mut a, &typed("not on a friday"));
    press(&mut a, &[special(KeyCode::Enter)]);
    let sent = responds(&effects(&mut a));
    assert_eq!(sent[0].1.approved, Some(false));
    assert_eq!(sent[0].1.reason.as_deref(), Some("not on a friday"));

    // Text: enter starts a new line, ctrl-s sends.
    a.inbox.form = None;
    a.inbox.editing = false;
    press(&mut a, &[key('j'), special(KeyCode::Enter)]);
    assert_eq!(a.context(), Context::Answer);
    press(&mut a, &typed("Lighthouse"));
    press(&mut a, &[special(KeyCode::Enter), key('2')]);
    assert!(
        responds(&effects(&mut a)).is_empty(),
        "enter is a new line here"
    );
    press(&mut a, &[ctrl('s')]);
    let sent = responds(&effects(&mut a));
    assert_eq!(sent[0].0, "name");
    assert_eq!(sent[0].1.text.as_deref(), Some("Lighthouse\n2"));
    // Escape keeps the draft; enter brings it back.
    press(&mut a, &[special(KeyCode::Esc)]);
    assert_eq!(a.context(), Context::Inbox);
    press(&mut a, &[special(KeyCode::Enter)]);
    assert_eq!(
        a.inbox.form.as_ref().map(|f| f.text()).as_deref(),
        Some("Lighthouse\n2")
    );
    press(&mut a, &[special(KeyCode::Esc)]);

    // Pick one: arrows move, enter sends the option under the cursor.
    press(
        &mut a,
        &[key('j'), special(KeyCode::Enter), key('j'), key('j')],
    );
    press(&mut a, &[special(KeyCode::Enter)]);
    let sent = responds(&effects(&mut a));
    assert_eq!(sent[0].1.selected.as_deref(), Some("tomorrow morning"));
    press(&mut a, &[special(KeyCode::Esc)]);

    // Pick many: space checks.
    press(&mut a, &[key('j'), special(KeyCode::Enter)]);
    press(&mut a, &[key(' '), key('j'), key('j'), key(' '), ctrl('s')]);
    let sent = responds(&effects(&mut a));
    assert_eq!(
        sent[0].1.selected_multiple,
        Some(vec!["eu".to_string(), "asia".to_string()])
    );
    press(&mut a, &[special(KeyCode::Esc)]);

    // Custom: JSON that does not parse is not sent and says where it breaks.
    press(&mut a, &[key('j'), special(KeyCode::Enter)]);
    press(&mut a, &typed("{\"rps\": 10,}"));
    press(&mut a, &[ctrl('s')]);
    assert!(responds(&effects(&mut a)).is_empty());
    let err = a.inbox.form.as_ref().and_then(|f| f.error.clone());
    assert!(
        err.is_some_and(|e| e.contains("not JSON") && e.contains("line 1 column 12")),
        "{:?}",
        a.inbox.form
    );
    press(
        &mut a,
        &[
            special(KeyCode::Backspace),
            special(KeyCode::Backspace),
            key('}'),
        ],
    );
    press(&mut a, &[ctrl('s')]);
    let sent = responds(&effects(&mut a));
    assert_eq!(sent[0].1.custom_data, Some(serde_json::json!({"rps": 10})));

    // Taken: the request leaves the list and the form closes.
    a.on_msg(Msg::Responded {
        id: "limits".into(),
        result: Ok(graflow::studio::screens::inbox::Responded {
            value: serde_json::json!({"rps": 10}),
            run_id: "elsewhere".into(),
            task: "task_limits".into(),
            workflow: "release".into(),
            checkpoint: None,
        }),
    });
    assert_eq!(a.pending_requests(), 4);
    assert!(a.inbox.form.is_none());
    assert_eq!(a.context(), Context::Inbox);
    press(&mut a, &[special(KeyCode::Esc)]);
    assert_eq!(a.showing, graflow::studio::screens::Screen::Main);
}

#[test]
fn an_answer_reported_after_its_run_ended_keeps_the_run_outcome() {
    // The answer lets the run finish before the backend's news of it arrives, and the run's
    // end (which drops it from the live runs) may come first too: the run's outcome is the
    // newer news, so the status line keeps it.
    let mut a = after_run(&[etl()], etl_failed_run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    assert!(matches!(&a.message, Some((m, _)) if m.contains("run failed")));
    a.on_msg(Msg::RunEnded(id.clone()));
    a.on_msg(Msg::Responded {
        id: "approve".into(),
        result: Ok(graflow::studio::screens::inbox::Responded {
            value: serde_json::json!(true),
            run_id: id,
            task: "approve".into(),
            workflow: "etl".into(),
            checkpoint: None,
        }),
    });
    assert!(
        matches!(&a.message, Some((m, _)) if m.contains("run failed")),
        "{:?}",
        a.message
    );
}

#[test]
fn answering_a_paused_run_offers_to_resume_it() {
    let mut a = app();
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    a.update(Action::ToggleInbox);
    effects(&mut a);
    a.on_msg(Msg::Responded {
        id: "approve".into(),
        result: Ok(graflow::studio::screens::inbox::Responded {
            value: serde_json::json!(true),
            run_id: "0193a1b2c3d4e".into(),
            task: "task_approve".into(),
            workflow: "release".into(),
            checkpoint: Some("/state/checkpoints/release-001.ckpt".into()),
        }),
    });
    assert!(matches!(
        &a.overlay,
        Some(Overlay::Confirm(
            graflow::studio::app::Question::ResumeAnswered { .. }
        ))
    ));
    assert!(render(&a, 100, 30).contains("Resume release from its checkpoint now?"));
    a.update(Action::Confirm);
    let fx = effects(&mut a);
    assert!(
        fx.iter().any(
            |e| matches!(e, Effect::PrepareResume { checkpoint, force: false }
            if checkpoint == &PathBuf::from("/state/checkpoints/release-001.ckpt"))
        ),
        "{fx:?}"
    );
}

#[test]
fn a_changed_workflow_file_resumes_only_after_a_yes() {
    use graflow::runsetup::ResumeRefusal;
    use graflow_engine::checkpoint::Reason;
    let mut a = app();
    a.update(Action::ToggleCheckpoints);
    let fx = effects(&mut a);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::RefreshCheckpoints(_)))
    );
    a.on_msg(Msg::Checkpoints(vec![
        checkpoint_info(
            2,
            "release",
            "2026-11-28T14:34:10Z",
            Reason::Feedback,
            Some("approve"),
        ),
        checkpoint_info(1, "release", "2026-11-28T14:30:00Z", Reason::Host, None),
    ]));
    // Selecting reads the checkpoint's content.
    assert!(
        matches!(&effects(&mut a)[..], [Effect::LoadCheckpoint(p)] if p.ends_with("release-0193a1b2c3d4e-002.ckpt"))
    );
    a.update(Action::Down);
    assert!(
        matches!(&effects(&mut a)[..], [Effect::LoadCheckpoint(p)] if p.ends_with("release-0193a1b2c3d4e-001.ckpt"))
    );
    a.update(Action::Up);
    effects(&mut a);
    assert_eq!(a.key_action(&special(KeyCode::Enter)), Some(Action::Resume));
    a.update(Action::Resume);
    let ckpt = PathBuf::from("/state/checkpoints/release-0193a1b2c3d4e-002.ckpt");
    assert!(
        matches!(&effects(&mut a)[..], [Effect::PrepareResume { checkpoint, force: false }] if *checkpoint == ckpt)
    );
    a.on_msg(Msg::ResumePrepared {
        checkpoint: ckpt.clone(),
        result: Err(ResumeRefusal::Changed(PathBuf::from("/flows/release.ron"))),
    });
    assert!(render(&a, 100, 30).contains("release.ron changed since the checkpoint"));
    a.update(Action::Deny);
    assert!(a.overlay.is_none() && effects(&mut a).is_empty());
    a.update(Action::Resume);
    a.on_msg(Msg::ResumePrepared {
        checkpoint: ckpt.clone(),
        result: Err(ResumeRefusal::Changed(PathBuf::from("/flows/release.ron"))),
    });
    effects(&mut a);
    a.update(Action::Confirm);
    assert!(
        matches!(&effects(&mut a)[..], [Effect::PrepareResume { checkpoint, force: true }] if *checkpoint == ckpt)
    );
    // Any other refusal is said plainly.
    a.on_msg(Msg::ResumePrepared {
        checkpoint: ckpt,
        result: Err(ResumeRefusal::NoCopy("release".into())),
    });
    assert!(matches!(&a.message, Some((m, Level::Error)) if m.contains("holds no copy")));
}

#[test]
fn read_only_lists_but_neither_answers_nor_resumes() {
    let mut a = App::new(Settings {
        read_only: true,
        ..Settings::default()
    });
    a.update(Action::ToggleInbox);
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    effects(&mut a);
    for action in [Action::Approve, Action::Reject, Action::AnswerRequest] {
        a.update(action);
        assert!(responds(&effects(&mut a)).is_empty());
        assert!(matches!(&a.message, Some((m, Level::Error)) if m.contains("read-only")));
    }
    assert!(a.inbox.form.is_none());
    let screen = render(&a, 100, 30);
    assert!(
        screen.contains("read-only: answer with graflow feedback respond approve"),
        "{screen}"
    );
    assert!(!screen.contains("y approve"), "{screen}");
    a.update(Action::ToggleCheckpoints);
    a.update(Action::Resume);
    assert!(
        !effects(&mut a)
            .iter()
            .any(|e| matches!(e, Effect::PrepareResume { .. }))
    );
}

#[test]
fn the_inbox_polls_only_while_something_waits() {
    let mut a = app();
    a.add_workflow(etl());
    effects(&mut a);
    assert!(!a.needs_heartbeat(), "idle, nothing pending: no timer");
    a.update(Action::ToggleInbox);
    assert!(a.needs_heartbeat(), "the open inbox polls");
    a.on_msg(Msg::Inbox(Ok(Vec::new())));
    a.update(Action::ToggleInbox);
    effects(&mut a);
    assert!(!a.needs_heartbeat());
    // A request listed (asked by another process): the badge must drop when answered.
    a.on_msg(Msg::Inbox(Ok(vec![request(
        "x",
        graflow_engine::hitl::FeedbackKind::Text,
        "?",
        &[],
    )])));
    assert!(a.needs_heartbeat());
    assert!(render(&a, 100, 30).contains("⚑ 1 waiting"));
    a.tick(at(5_000));
    assert!(
        effects(&mut a)
            .iter()
            .any(|e| matches!(e, Effect::RefreshInbox))
    );
    // A poll that finds nothing new draws nothing.
    a.dirty = false;
    a.on_msg(Msg::Inbox(Ok(vec![request(
        "x",
        graflow_engine::hitl::FeedbackKind::Text,
        "?",
        &[],
    )])));
    assert!(!a.dirty);
    a.on_msg(Msg::Inbox(Ok(Vec::new())));
    assert!(a.dirty && !a.needs_heartbeat());
    assert!(render(&a, 100, 30).contains("⚑ 0"));
    // A studio run's question refreshes the inbox at once.
    let id = started(&mut a);
    effects(&mut a);
    a.on_msg(Msg::Engine(vec![ev(
        &id,
        5,
        EventKind::FeedbackRequested {
            id: "fb-1".into(),
            task: "merge".into(),
            kind: "approval".into(),
            prompt: "Ship it?".into(),
        },
    )]));
    assert!(
        effects(&mut a)
            .iter()
            .any(|e| matches!(e, Effect::RefreshInbox))
    );
}

#[test]
fn clicks_and_the_wheel_select_in_the_inbox_and_the_browser() {
    use graflow_engine::checkpoint::Reason;
    let mut a = app();
    a.update(Action::ToggleInbox);
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    // 100×30: the list on the left, its first row at y = 1.
    a.update(Action::Click(5, 3));
    assert_eq!(a.inbox.selected, 2);
    a.update(Action::ScrollAt(50, 10, 3));
    assert_eq!(a.inbox.selected, 4);
    a.update(Action::Click(5, 20));
    assert_eq!(
        a.inbox.selected, 4,
        "a click below the rows selects nothing"
    );
    a.update(Action::ToggleCheckpoints);
    a.on_msg(Msg::Checkpoints(vec![
        checkpoint_info(2, "release", "2026-11-28T14:34:10Z", Reason::Host, None),
        checkpoint_info(1, "release", "2026-11-28T14:30:00Z", Reason::Host, None),
    ]));
    effects(&mut a);
    // The table has a header row: the second checkpoint is at y = 3.
    a.update(Action::Click(10, 3));
    assert_eq!(a.checkpoints.selected, 1);
    assert!(matches!(&effects(&mut a)[..], [Effect::LoadCheckpoint(_)]));
}

#[test]
fn a_question_answered_elsewhere_takes_its_form_and_says_so() {
    let mut a = app();
    a.update(Action::ToggleInbox);
    a.on_msg(Msg::Inbox(Ok(every_kind())));
    a.update(Action::Down);
    a.update(Action::AnswerRequest);
    press(&mut a, &typed("half"));
    let rest: Vec<_> = every_kind()
        .into_iter()
        .filter(|r| r.id != "name")
        .collect();
    a.on_msg(Msg::Inbox(Ok(rest)));
    assert!(a.inbox.form.is_none());
    assert_eq!(a.context(), graflow::studio::action::Context::Inbox);
    assert!(
        matches!(&a.message, Some((m, _)) if m.contains("name was answered or withdrawn elsewhere"))
    );
    assert_eq!(a.pending_requests(), 4);
}

// ---- A newcomer's first hour (issue 11) ----

fn loaded(a: &mut App, index: usize, wf: Arc<graflow_engine::Workflow>) {
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

#[test]
fn the_first_j_moves_through_the_workflows_in_path_order() {
    let mut a = app();
    a.on_msg(Msg::Discovered(vec![
        PathBuf::from("/flows/b.ron"),
        PathBuf::from("/flows/c.ron"),
    ]));
    assert_eq!(a.focus, Pane::Workflows);
    // A file added later sorts among the others.
    a.on_msg(Msg::Discovered(vec![PathBuf::from("/flows/a.ron")]));
    let order: Vec<String> = a
        .visible_workflows()
        .iter()
        .map(|&i| a.workflows.entries[i].label())
        .collect();
    assert_eq!(order, ["a.ron", "b.ron", "c.ron"]);
    assert_eq!(a.entry().map(|e| e.label()).as_deref(), Some("b.ron"));
    assert_eq!(a.key_action(&key('j')), Some(Action::Down));
    a.update(Action::Down);
    assert_eq!(a.entry().map(|e| e.label()).as_deref(), Some("c.ron"));
    a.update(Action::Home);
    assert_eq!(a.entry().map(|e| e.label()).as_deref(), Some("a.ron"));
    // `/` filters as it is typed; esc shows them all again.
    assert_eq!(a.key_action(&key('/')), Some(Action::Search));
    a.update(Action::Search);
    a.update(Action::InputChar('c'));
    assert_eq!(a.visible_workflows().len(), 1);
    assert_eq!(a.entry().map(|e| e.label()).as_deref(), Some("c.ron"));
    a.update(Action::InputSubmit);
    assert_eq!(a.workflows.filter.as_deref(), Some("c"));
    a.update(Action::Back);
    assert_eq!(a.workflows.filter, None);
    assert_eq!(a.visible_workflows().len(), 3);
}

#[test]
fn quit_asks_while_a_run_goes_on() {
    let mut a = app();
    a.add_workflow(etl());
    started(&mut a);
    a.update(Action::Quit);
    assert!(!a.quit);
    assert!(matches!(
        &a.overlay,
        Some(Overlay::Confirm(graflow::studio::app::Question::QuitWhileRunning { workflows }))
            if workflows == &["etl".to_string()]
    ));
    // n stays; q again (or y) quits.
    a.update(Action::Deny);
    assert!(!a.quit && a.overlay.is_none());
    a.update(Action::Quit);
    assert_eq!(a.key_action(&key('q')), Some(Action::Confirm));
    a.update(Action::Confirm);
    assert!(a.quit);
    // Nothing running: q quits at once.
    let mut idle = app();
    idle.add_workflow(etl());
    idle.update(Action::Quit);
    assert!(idle.quit);
}

#[test]
fn stale_state_goes_away() {
    // A reload error on the status line goes when the file is read again.
    let mut a = app();
    let i = file_entry(&mut a, "/flows/broken.ron");
    a.on_msg(Msg::Loaded {
        index: i,
        generation: 1,
        result: Err(Failed {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: PathBuf::from("/flows/broken.ron"),
                line: 3,
                column: 9,
                message: "a comma is missing after this value".into(),
                hint: None,
            }],
            missing: false,
        }),
    });
    a.update(Action::Run);
    assert!(matches!(&a.message, Some((m, Level::Error)) if m.contains("broken.ron")));
    a.on_msg(Msg::FilesChanged(vec![PathBuf::from("/flows/broken.ron")]));
    a.on_msg(Msg::Loaded {
        index: i,
        generation: 2,
        result: Ok(Loaded {
            workflow: etl(),
            warnings: vec![],
            scripts: vec![],
            setup: None,
        }),
    });
    assert_eq!(a.message, None, "the old error stayed");

    // A log search belongs to the workflow it was made in.
    let j = file_entry(&mut a, "/flows/other.ron");
    loaded(&mut a, j, looping());
    a.focus = Pane::Inspector;
    a.update(Action::Search);
    a.update(Action::InputChar('x'));
    a.update(Action::InputSubmit);
    assert!(a.inspector.log.search.is_some());
    a.update(Action::SelectWorkflow(j));
    assert_eq!(a.inspector.log.search, None);

    // The checkpoint browser's cursor follows the newest when it was on the newest.
    use graflow_engine::checkpoint::Reason;
    let mut b = app();
    b.update(Action::ToggleCheckpoints);
    let one = checkpoint_info(1, "etl", "2026-11-28T14:30:00Z", Reason::Host, None);
    let two = checkpoint_info(2, "etl", "2026-11-28T14:31:00Z", Reason::Host, None);
    let three = checkpoint_info(3, "etl", "2026-11-28T14:32:00Z", Reason::Host, None);
    b.on_msg(Msg::Checkpoints(vec![one.clone()]));
    b.on_msg(Msg::Checkpoints(vec![two.clone(), one.clone()]));
    assert_eq!(b.checkpoints.selected_info().map(|i| i.seq), Some(2));
    // On an older one, the cursor stays on it.
    b.update(Action::Down);
    b.on_msg(Msg::Checkpoints(vec![three, two, one]));
    assert_eq!(b.checkpoints.selected_info().map(|i| i.seq), Some(1));
}

#[test]
fn small_things() {
    // T switches themes at run time.
    let mut a = app();
    a.add_workflow(etl());
    assert_eq!(a.key_action(&key('T')), Some(Action::CycleTheme));
    a.update(Action::CycleTheme);
    assert_eq!(a.settings.theme.name, "light");
    a.update(Action::CycleTheme);
    a.update(Action::CycleTheme);
    assert_eq!(a.settings.theme.name, "dark");

    // The inbox's status line does not point at the inbox while it is open.
    let mut b = app();
    b.add_workflow(etl());
    let id = started(&mut b);
    b.update(Action::ToggleInbox);
    b.on_msg(Msg::Engine(vec![ev(
        &id,
        10,
        EventKind::FeedbackRequested {
            id: "q1".into(),
            task: "approve".into(),
            kind: "approval".into(),
            prompt: "Ship?".into(),
        },
    )]));
    let m = b.message.clone().map(|m| m.0).unwrap_or_default();
    assert!(
        m.contains("approve asks: Ship?") && !m.contains("opens the inbox"),
        "{m}"
    );

    // The timeout counts down.
    let mut c = app();
    c.update(Action::ToggleInbox);
    c.on_msg(Msg::Inbox(Ok(every_kind())));
    c.update(Action::Down);
    c.now = at(40_000);
    let early = render(&c, 100, 30);
    c.tick(at(100_000));
    let later = render(&c, 100, 30);
    assert!(early.contains("the run pauses in 2m 30s"), "{early}");
    assert!(later.contains("the run pauses in 1m 30s"), "{later}");
    c.now = at(400_000);
    assert!(render(&c, 100, 30).contains("wait is over"));
}

/// `fetch` of `etl()` standing in for a `Workflow` task: its sub-run's events arrive nested.
fn sub_run_events(run: &str) -> Vec<graflow_engine::RunEvent> {
    let nested = |ms, kind: EventKind| ev(run, ms, kind.nested_in("fetch".into()));
    vec![
        ev(
            run,
            0,
            EventKind::RunStarted {
                workflow: "etl".into(),
                start: "fetch".into(),
                resumed_from: None,
            },
        ),
        ev(
            run,
            1,
            EventKind::TaskStarted {
                task: "fetch".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
        nested(
            2,
            EventKind::RunStarted {
                workflow: "sub".into(),
                start: "a".into(),
                resumed_from: None,
            },
        ),
        nested(
            3,
            EventKind::TaskSucceeded {
                task: "a".into(),
                result: serde_json::json!(1),
                duration_ms: 1.0,
                cycle: 1,
                worker: None,
            },
        ),
        nested(
            4,
            EventKind::TaskStarted {
                task: "b".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
    ]
}

#[test]
fn a_workflow_tasks_sub_run_shows_live_in_the_inspector() {
    let mut a = after_run(&[etl()], sub_run_events);
    let run = a.entry().and_then(|e| e.run.as_ref()).expect("a run");
    assert!(run.is_active(), "the sub-run's events do not end the run");
    assert_eq!(run.status_of("fetch"), TaskStatus::Running);
    // Select fetch (the first task) in the graph: the inspector shows its sub-run's tasks.
    a.focus = Pane::Graph;
    let screen = render(&a, 120, 36);
    assert!(
        screen.contains("sub-run 'sub' running: ✓ a ● b"),
        "{screen}"
    );
}
