//! Headless app tests: the real driver with the real embedded engine, real files and the real
//! file watcher, driven by actions; no terminal (frames go to a `TestBackend`).

use crate::studio_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use graflow::studio::action::Action;
use graflow::studio::app::{App, Overlay, Question, Settings};
use graflow::studio::model::logbuf::MAX_LINES;
use graflow::studio::model::{LoadState, RunPhase, TaskStatus};
use graflow::studio::runtime::Driver;
use graflow::studio::runtime::event_loop::{self, Host};
use graflow_engine::{LogStream, RetryPolicy, RunStatus, TaskDef, Value, Workflow};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use studio_support::*;

const WAIT: Duration = Duration::from_secs(20);

fn driver(state: &Path, workflows: Vec<Arc<Workflow>>) -> Driver {
    let mut app = App::new(Settings::default());
    app.screen = (100, 30);
    for wf in workflows {
        app.add_workflow(wf);
    }
    Driver::new(app, state.to_path_buf())
}

fn finished(app: &App) -> bool {
    app.entry()
        .and_then(|e| e.run.as_ref())
        .is_some_and(|r| matches!(r.phase, RunPhase::Finished(_)))
}

fn phase(app: &App) -> Option<RunPhase> {
    app.entry().and_then(|e| e.run.as_ref()).map(|r| r.phase)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_succeeds_is_recorded_and_runs_again() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut d = driver(state.path(), vec![etl()]);
    d.dispatch(Action::Run);
    assert!(d.run_until(WAIT, finished).await, "the run did not finish");
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Succeeded))
    );
    let e = d.app.entry().unwrap_or_else(|| panic!("no entry"));
    let run = e.run.as_ref().unwrap_or_else(|| panic!("no run"));
    for id in ["fetch", "clean_a", "enrich", "clean_b", "merge", "load"] {
        assert_eq!(run.status_of(id), TaskStatus::Succeeded, "{id}");
    }
    assert_eq!(
        run.task("fetch")
            .map(|t| t.log.lines()[0].text.clone())
            .as_deref(),
        Some("fetch: working")
    );
    // (A history read from before the run ended may arrive first: wait for the final record.)
    assert!(
        d.run_until(WAIT, |a| a
            .history
            .records
            .first()
            .is_some_and(|r| r.status.is_some()))
            .await,
        "no history record"
    );
    let first = d.app.history.records[0].run_id.clone();
    assert_eq!(d.app.history.records[0].status, Some(RunStatus::Succeeded));
    assert_eq!(d.app.history.records[0].workflow, "etl");
    // The studio stays open and runs it again.
    d.dispatch(Action::Run);
    assert!(d.run_until(WAIT, |a| a.history.records.len() == 2).await);
    assert_ne!(d.app.history.records[0].run_id, first);
    // A recorded run can be opened from the history.
    d.app.focus = graflow::studio::app::Pane::History;
    d.app.history.selected = 1;
    d.dispatch(Action::Open);
    assert!(
        d.run_until(WAIT, |a| a
            .entry()
            .and_then(|e| e.run.as_ref())
            .is_some_and(|r| r.run_id == first))
            .await
    );
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Succeeded))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_opens_with_its_log() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut wf = Workflow::builder("failing");
    wf.task("prepare", |_ctx| async { anyhow::Ok(Value::from(1)) });
    wf.add(
        TaskDef::from_fn("import", |ctx| async move {
            ctx.log("reading rows");
            ctx.log_stream(
                LogStream::Stderr,
                format!("error: row 7 is broken (attempt {})", ctx.attempt()),
            );
            Err::<Value, _>(anyhow::anyhow!("row 7 is broken"))
        })
        .retry(RetryPolicy::retries(1).backoff(Duration::from_millis(10))),
    );
    wf.task("report", |_ctx| async { anyhow::Ok(Value::Null) });
    wf.flow_str("prepare >> import >> report");
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let mut d = driver(state.path(), vec![wf]);
    d.dispatch(Action::Run);
    assert!(d.run_until(WAIT, finished).await);
    assert_eq!(phase(&d.app), Some(RunPhase::Finished(RunStatus::Failed)));
    let e = d.app.entry().unwrap_or_else(|| panic!("no entry"));
    assert_eq!(
        e.graph.selected.as_deref(),
        Some("import"),
        "the failed task is selected"
    );
    let lines: Vec<String> = d.app.log_lines().iter().map(|l| l.text.clone()).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let run = e.run.as_ref().unwrap_or_else(|| panic!("no run"));
    assert_eq!(run.task("import").map(|t| t.attempts.len()), Some(2));
    assert_eq!(run.status_of("report"), TaskStatus::Pending);
    d.dispatch(Action::ToggleErrorsOnly);
    assert_eq!(d.app.log_lines().len(), 2);
    let screen = render(&d.app, 100, 30);
    assert!(
        screen.contains("error: row 7 is broken (attempt 1)"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_workflow() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut wf = Workflow::builder("slow");
    wf.task("wait", |_ctx| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        anyhow::Ok(Value::Null)
    });
    wf.task("after", |_ctx| async { anyhow::Ok(Value::Null) });
    wf.flow_str("wait >> after");
    let mut d = driver(
        state.path(),
        vec![Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))],
    );
    d.dispatch(Action::Run);
    assert!(
        d.run_until(WAIT, |a| a
            .entry()
            .and_then(|e| e.run.as_ref())
            .is_some_and(|r| r.status_of("wait") == TaskStatus::Running))
            .await
    );
    let t0 = Instant::now();
    d.dispatch(Action::Cancel);
    d.dispatch(Action::Confirm);
    assert!(d.run_until(WAIT, finished).await);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Cancelled))
    );
    let run = d
        .app
        .entry()
        .and_then(|e| e.run.as_ref())
        .unwrap_or_else(|| panic!("no run"));
    assert_eq!(run.status_of("wait"), TaskStatus::Cancelled);
    assert!(
        d.run_until(WAIT, |a| a
            .history
            .records
            .first()
            .is_some_and(|r| r.status == Some(RunStatus::Cancelled)))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_added_at_run_time_appear_live() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut wf = Workflow::builder("dynamic");
    wf.task("plan", |ctx| async move {
        for i in 0..3 {
            ctx.next_task_def(TaskDef::from_fn(
                format!("work_{i}").as_str(),
                |_ctx| async { anyhow::Ok(Value::from("done")) },
            ))?;
        }
        anyhow::Ok(Value::from(3))
    });
    wf.task("collect", |_ctx| async { anyhow::Ok(Value::Null) });
    wf.flow_str("plan >> collect");
    let mut d = driver(
        state.path(),
        vec![Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))],
    );
    d.dispatch(Action::ViewCanvas);
    d.dispatch(Action::Run);
    assert!(d.run_until(WAIT, finished).await);
    let e = d.app.entry().unwrap_or_else(|| panic!("no entry"));
    assert_eq!(e.graph.lanes.rows.len(), 5);
    let run = e.run.as_ref().unwrap_or_else(|| panic!("no run"));
    for i in 0..3 {
        assert_eq!(run.status_of(&format!("work_{i}")), TaskStatus::Succeeded);
    }
    // The canvas gets a new layout with the new tasks.
    assert!(
        d.run_until(WAIT, |a| a
            .entry()
            .is_some_and(|e| e.graph.layout_is_current()))
            .await
    );
    let layout = d
        .app
        .entry()
        .and_then(|e| e.graph.layout.clone())
        .unwrap_or_default();
    assert_eq!(layout.layered.pos.len(), 5);
}

const GOOD: &str = r#"Workflow(
    name: "reload",
    flow: "a >> b",
    tasks: {
        "a": Task(run: Value(1)),
        "b": Task(run: Script(file: "b.rhai")),
    },
)
"#;

const BAD: &str = r#"Workflow(
    name: "reload",
    flow: "a >> b >> c",
    tasks: {
        "a": Task(run: Value(1)),
        "b": Task(run: Script(file: "b.rhai")),
    },
)
"#;

const FIXED: &str = r#"Workflow(
    name: "reload",
    flow: "a >> b >> c",
    tasks: {
        "a": Task(run: Value(1)),
        "b": Task(run: Script(file: "b.rhai")),
        "c": Task(run: Value(3)),
    },
)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_shows_errors_and_fixes() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("reload.ron");
    let script = dir.path().join("b.rhai");
    std::fs::write(&script, "ctx.input(\"a\") + 1").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, GOOD).unwrap_or_else(|e| panic!("{e}"));
    let mut d = driver(state.path(), vec![]);
    d.open(vec![dir.path().to_path_buf()], true);
    assert!(
        d.run_until(WAIT, |a| a
            .workflows
            .entries
            .first()
            .is_some_and(|e| e.state == LoadState::Ready))
            .await
    );
    assert_eq!(d.app.workflows.entries.len(), 1);
    d.dispatch(Action::SelectNode("b".into()));
    // Give the watcher a moment to settle on the new folder.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t0 = Instant::now();
    std::fs::write(&file, BAD).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.run_until(WAIT, |a| a.workflows.entries[0].state == LoadState::Invalid)
            .await,
        "the bad edit was not seen"
    );
    println!(
        "{{\"workload\":\"hot_reload_error\",\"ms\":{:.1}}}",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let e = &d.app.workflows.entries[0];
    assert!(e.diagnostics[0].line > 0, "{:?}", e.diagnostics);
    assert_eq!(e.graph.model.len(), 2, "the last good graph stays");
    assert_eq!(e.graph.selected.as_deref(), Some("b"));

    let t0 = Instant::now();
    std::fs::write(&file, FIXED).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.run_until(WAIT, |a| a.workflows.entries[0].state == LoadState::Ready)
            .await,
        "the fix was not seen"
    );
    println!(
        "{{\"workload\":\"hot_reload_fix\",\"ms\":{:.1}}}",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(d.app.workflows.entries[0].graph.model.len(), 3);
    assert_eq!(
        d.app.workflows.entries[0].graph.selected.as_deref(),
        Some("b")
    );

    // A save of the script it names reloads it too.
    let generation = d.app.workflows.entries[0].generation;
    std::fs::write(&script, "ctx.input(\"a\") + 2").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.run_until(WAIT, |a| a.workflows.entries[0].generation > generation
            && a.workflows.entries[0].state == LoadState::Ready)
            .await
    );

    // An editor saving by rename still counts. (First let trailing events of the last save
    // settle, so that the next wait sees the rename's own event.)
    d.run_until(Duration::from_millis(400), |_| false).await;
    let tmp = dir.path().join(".reload.ron.swp");
    std::fs::write(&tmp, GOOD).unwrap_or_else(|e| panic!("{e}"));
    let before = d.app.workflows.entries[0].generation;
    std::fs::rename(&tmp, &file).unwrap_or_else(|e| panic!("{e}"));
    // (Wait for the rename's own event: a load still running from the script's save may read
    // the new content first.)
    assert!(
        d.run_until(WAIT, |a| {
            a.workflows.entries[0].generation > before
                && a.workflows.entries[0].state == LoadState::Ready
                && a.workflows.entries[0].graph.model.len() == 2
        })
        .await,
        "a save by rename was missed"
    );

    // Deleted: the graph stays, the state says so.
    d.run_until(Duration::from_millis(400), |_| false).await;
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
    let deleted = d
        .run_until(WAIT, |a| a.workflows.entries[0].state == LoadState::Deleted)
        .await;
    assert!(
        deleted,
        "the deletion was missed: {:?} {:?}",
        d.app.workflows.entries[0].state, d.app.workflows.entries[0].diagnostics
    );
    assert_eq!(d.app.workflows.entries[0].graph.model.len(), 2);
    // A new workflow file in the folder shows up.
    std::fs::write(
        dir.path().join("second.ron"),
        GOOD.replace("reload", "second"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.run_until(WAIT, |a| a.workflows.entries.len() == 2
            && a.workflows.entries[1].state == LoadState::Ready)
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_stays_bounded() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut wf = Workflow::builder("noisy");
    wf.task("shout", |ctx| async move {
        let long = "x".repeat(10_000);
        for i in 0..100_000 {
            ctx.log(if i % 1000 == 0 {
                long.clone()
            } else {
                format!("line {i}")
            });
        }
        anyhow::Ok(Value::Null)
    });
    let mut d = driver(
        state.path(),
        vec![Arc::new({
            wf.flow_str("shout");
            wf.build().unwrap_or_else(|e| panic!("{e}"))
        })],
    );
    d.dispatch(Action::Run);
    assert!(d.run_until(Duration::from_secs(60), finished).await);
    let run = d
        .app
        .entry()
        .and_then(|e| e.run.as_ref())
        .unwrap_or_else(|| panic!("no run"));
    let log = &run.task("shout").unwrap_or_else(|| panic!("no task")).log;
    assert_eq!(log.len(), MAX_LINES);
    assert_eq!(log.total(), 100_000);
    assert_eq!(log.dropped(), 100_000 - MAX_LINES as u64);
    assert!(log.lines().iter().all(|l| l.text.chars().count() <= 1001));
    let _ = render(&d.app, 100, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_tasks_show_as_a_list() {
    // (5,000 tasks: a start, a group of 4,998, an end.)
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut wf = Workflow::builder("huge");
    let mut names = Vec::new();
    for i in 0..5000 {
        let id = format!("t{i:04}");
        wf.add(TaskDef::from_fn(id.as_str(), |_ctx| async {
            anyhow::Ok(Value::Null)
        }));
        names.push(id);
    }
    let fan: Vec<&str> = names[1..4999].iter().map(String::as_str).collect();
    wf.flow_str(&format!(
        "{} >> ({}) >> {}",
        names[0],
        fan.join(" | "),
        names[4999]
    ));
    let wf = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
    let mut d = driver(state.path(), vec![wf]);
    // A big group opens collapsed, with its counts; expanded, every task has a row.
    assert_eq!(d.app.entry().map(|e| e.graph.lanes.rows.len()), Some(3));
    d.app.focus = graflow::studio::app::Pane::Graph;
    d.dispatch(Action::Down);
    d.dispatch(Action::ToggleGroup);
    let e = d.app.entry().unwrap_or_else(|| panic!("no entry"));
    assert_eq!(e.graph.lanes.rows.len(), e.graph.model.len());
    assert!(
        e.graph.lanes.width <= 4,
        "gutter {} wide",
        e.graph.lanes.width
    );
    d.dispatch(Action::Run);
    assert!(d.run_until(Duration::from_secs(60), finished).await);
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Succeeded))
    );
    d.dispatch(Action::End);
    let screen = render(&d.app, 100, 30);
    assert!(screen.contains("t4999"), "{screen}");
}

struct TestHost {
    terminal: Terminal<TestBackend>,
    copies: Vec<String>,
}

impl Host for TestHost {
    type B = TestBackend;
    fn terminal(&mut self) -> &mut Terminal<TestBackend> {
        &mut self.terminal
    }
    fn copy(&mut self, text: &str) {
        self.copies.push(text.to_string());
    }
    fn set_mouse(&mut self, _on: bool) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_draws_nothing_and_keys_work_through_the_loop() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut d = driver(state.path(), vec![etl()]);
    let mut host = TestHost {
        terminal: Terminal::new(TestBackend::new(100, 30)).unwrap_or_else(|e| panic!("{e}")),
        copies: Vec::new(),
    };
    // 1.5 s of nothing, then `enter` (the graph of the selected workflow), `y` (copy the
    // selected id), then `q`.
    let keys = futures::stream::unfold(0, |n| async move {
        let key = |c| Ok(Event::Key(KeyEvent::new(c, KeyModifiers::NONE)));
        match n {
            0 => {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Some((key(KeyCode::Enter), 1))
            }
            1 => Some((key(KeyCode::Char('y')), 2)),
            2 => Some((key(KeyCode::Char('q')), 3)),
            _ => None,
        }
    });
    let stats = event_loop::run(&mut d, &mut host, Box::pin(keys))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{{\"workload\":\"idle_frames_1500ms\",\"frames\":{},\"messages\":{}}}",
        stats.frames, stats.messages
    );
    // The first frame, one after the history arrives, one per key: nothing while idle.
    assert!(stats.frames <= 5, "{stats:?}");
    assert_eq!(stats.inputs, 3);
    assert_eq!(host.copies, vec!["fetch".to_string()]);
    assert!(d.app.quit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_inspector_reads_a_running_run() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut wf = Workflow::builder("channel");
    wf.task("write", |ctx| async move {
        ctx.channel().set("progress", Value::from(42)).await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        anyhow::Ok(Value::Null)
    });
    wf.flow_str("write");
    let mut d = driver(
        state.path(),
        vec![Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))],
    );
    d.dispatch(Action::Run);
    assert!(
        d.run_until(WAIT, |a| a
            .entry()
            .and_then(|e| e.run.as_ref())
            .is_some_and(|r| r.status_of("write") == TaskStatus::Running))
            .await
    );
    // Opening the channel tab reads the live channel; later events refresh it.
    d.dispatch(Action::NextTab);
    let live = d
        .run_until(WAIT, |a| {
            a.entry().and_then(|e| e.run.as_ref()).is_some_and(|r| {
                r.is_active() && r.channel.get("progress") == Some(&Value::from(42))
            })
        })
        .await;
    assert!(live, "the running run's channel was not shown");
    d.dispatch(Action::Cancel);
    d.dispatch(Action::Confirm);
    assert!(d.run_until(WAIT, finished).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_answered_from_a_shell_lets_the_run_go_on() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/studio/approve.ron");
    let mut d = driver(state.path(), vec![]);
    d.open(vec![file], false);
    assert!(
        d.run_until(WAIT, |a| a
            .workflows
            .entries
            .first()
            .is_some_and(|e| e.state == LoadState::Ready))
            .await
    );
    d.dispatch(Action::Run);
    let asked = |a: &App| {
        a.entry()
            .and_then(|e| e.run.as_ref())
            .and_then(|r| r.pending_feedback.first().map(|p| p.0.clone()))
    };
    assert!(
        d.run_until(WAIT, |a| asked(a).is_some()).await,
        "no feedback request"
    );
    let id = asked(&d.app).unwrap_or_default();
    assert!(
        d.app
            .message
            .as_ref()
            .is_some_and(|m| m.0.contains("approve asks: Ship 1.4.0?"))
    );
    // Answer it the way a person at another terminal would.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args([
            "feedback",
            "respond",
            &id,
            "--approve",
            "--by",
            "tester",
            "--state-dir",
        ])
        .arg(state.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.run_until(WAIT, finished).await);
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Succeeded))
    );
    let run = d
        .app
        .entry()
        .and_then(|e| e.run.as_ref())
        .unwrap_or_else(|| panic!("no run"));
    assert!(run.pending_feedback.is_empty());
    assert_eq!(
        run.task("ship").and_then(|t| t.result.clone()),
        Some(Value::from("shipped"))
    );
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/studio")
        .join(name)
}

/// A driver on workflow file `file` (not watched), once it has loaded.
async fn on_file(state: &Path, file: std::path::PathBuf) -> Driver {
    let mut d = driver(state, vec![]);
    d.open(vec![file], false);
    assert!(
        d.run_until(WAIT, |a| a
            .workflows
            .entries
            .first()
            .is_some_and(|e| e.state == LoadState::Ready))
            .await,
        "the workflow did not load"
    );
    d
}

/// Press keys as the event loop does.
fn press(d: &mut Driver, keys: &str) {
    for c in keys.chars() {
        let k = match c {
            '\n' => KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
            '\x1b' => KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
            '\x13' => KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL),
            c => KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
        };
        event_loop::handle_input(d, Event::Key(k));
    }
}

fn waiting(a: &App, prompt: &str) -> bool {
    a.inbox.requests.iter().any(|r| r.spec.prompt == prompt)
}

fn graflow_cli(args: &[&str], state: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_answered_in_the_inbox_goes_on_at_once() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut d = on_file(state.path(), fixture("approve.ron")).await;
    press(&mut d, "r");
    // The question refreshes the inbox: the badge counts it.
    assert!(
        d.run_until(WAIT, |a| waiting(a, "Ship 1.4.0?")).await,
        "the request never reached the inbox"
    );
    assert!(render(&d.app, 100, 30).contains("⚑ 1 waiting"));
    // While it waits, a host checkpoint of the live run (C).
    press(&mut d, "C");
    assert!(
        d.run_until(WAIT, |a| a
            .message
            .as_ref()
            .is_some_and(|m| m.0.contains("saved:")))
            .await,
        "{:?}",
        d.app.message
    );
    let saved = graflow_engine::checkpoint::store::list(&state.path().join("checkpoints"));
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].reason, graflow_engine::checkpoint::Reason::Host);
    // Answer inline: a opens the inbox, y approves.
    press(&mut d, "a");
    let screen = render(&d.app, 100, 30);
    assert!(
        screen.contains("Inbox — 1 waiting") && screen.contains("Ship 1.4.0?"),
        "{screen}"
    );
    press(&mut d, "y");
    assert!(d.run_until(WAIT, finished).await);
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Succeeded))
    );
    let run = d.app.entry().and_then(|e| e.run.as_ref()).cloned();
    let run = run.unwrap_or_else(|| panic!("no run"));
    assert_eq!(
        run.task("ship").and_then(|t| t.result.clone()),
        Some(Value::from("shipped"))
    );
    assert!(d.run_until(WAIT, |a| a.pending_requests() == 0).await);
    assert!(render(&d.app, 100, 30).contains("⚑ 0"));
    // The studio answered through the backend: `graflow feedback` sees the answer.
    let out = graflow_cli(&["feedback", "list", "--all", "--json"], state.path());
    let listed: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed["status"], "answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_pick_one_are_answered_inline() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut d = on_file(state.path(), fixture("questions.ron")).await;
    press(&mut d, "r");
    assert!(d.run_until(WAIT, |a| waiting(a, "Release name?")).await);
    press(&mut d, "a\n");
    // enter is a new line in a text box; ctrl-s sends.
    press(&mut d, "Lighthouse\nautumn\x13");
    assert!(
        d.run_until(WAIT, |a| waiting(a, "When should it go out?"))
            .await,
        "the second question never came"
    );
    press(&mut d, "\nj\n");
    assert!(d.run_until(WAIT, finished).await);
    assert_eq!(
        phase(&d.app),
        Some(RunPhase::Finished(RunStatus::Succeeded))
    );
    let run = d.app.entry().and_then(|e| e.run.clone());
    let run = run.unwrap_or_else(|| panic!("no run"));
    assert_eq!(
        run.task("name").and_then(|t| t.result.clone()),
        Some(Value::from("Lighthouse\nautumn"))
    );
    assert_eq!(
        run.task("window").and_then(|t| t.result.clone()),
        Some(Value::from("tonight"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_answer_shows_why_and_keeps_what_was_typed() {
    use graflow_engine::hitl::{FeedbackBackend, FeedbackKind, FileBackend};
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A request asked by another process (stored the way runs store them).
    let backend = FileBackend::new(state.path().join("feedback"));
    let asked = request(
        "elsewhere-name-1-0-0",
        FeedbackKind::Text,
        "Release name?",
        &[],
    );
    backend
        .create(asked)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut d = driver(state.path(), vec![]);
    press(&mut d, "a");
    assert!(d.run_until(WAIT, |a| waiting(a, "Release name?")).await);
    press(&mut d, "\nLight");
    // Meanwhile someone answers from a shell.
    let out = graflow_cli(
        &[
            "feedback",
            "respond",
            "elsewhere-name-1-0-0",
            "--text",
            "Dawn",
        ],
        state.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    press(&mut d, "\x13");
    assert!(
        d.run_until(WAIT, |a| a
            .inbox
            .form
            .as_ref()
            .is_some_and(|f| f.error.is_some()))
            .await
    );
    let form = d
        .app
        .inbox
        .form
        .as_ref()
        .unwrap_or_else(|| panic!("no form"));
    assert_eq!(
        form.error.as_deref(),
        Some("feedback request 'elsewhere-name-1-0-0' is answered, not pending")
    );
    assert_eq!(form.text(), "Light", "what was typed is kept");
    assert!(render(&d.app, 100, 30).contains("is answered, not pending"));
}

/// Run `file` until it pauses for its question; returns the run id.
async fn paused_run(d: &mut Driver) -> String {
    press(d, "r");
    assert!(d.run_until(WAIT, finished).await, "the run did not pause");
    assert_eq!(phase(&d.app), Some(RunPhase::Finished(RunStatus::Paused)));
    // The inbox learns the checkpoint the run paused into.
    assert!(
        d.run_until(WAIT, |a| a
            .inbox
            .requests
            .iter()
            .any(|r| r.checkpoint.is_some()))
            .await,
        "the paused request was not listed with its checkpoint"
    );
    let run_id = d
        .app
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    // The run's task has ended too (its end is reported after its last event): an answer now
    // is for a paused run, not a live one.
    assert!(
        d.run_until(WAIT, |a| !a.runs.contains_key(&run_id)).await,
        "the paused run did not end"
    );
    run_id
}

fn succeeded_as(a: &App, run_id: &str) -> bool {
    a.entry()
        .and_then(|e| e.run.as_ref())
        .is_some_and(|r| r.run_id == run_id && r.phase == RunPhase::Finished(RunStatus::Succeeded))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_resumes_from_the_checkpoint_browser_after_answering() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let flows = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = flows.path().join("approve-pause.ron");
    std::fs::copy(fixture("approve-pause.ron"), &file).unwrap_or_else(|e| panic!("{e}"));
    let mut d = on_file(state.path(), file.clone()).await;
    let run_id = paused_run(&mut d).await;
    // Answer; the studio offers to resume; not now.
    press(&mut d, "ay");
    assert!(
        d.run_until(WAIT, |a| matches!(
            a.overlay,
            Some(Overlay::Confirm(Question::ResumeAnswered { .. }))
        ))
        .await,
        "{:?}",
        d.app.message
    );
    press(&mut d, "n");
    // The workflow file is gone meanwhile: the copy saved in the checkpoint runs.
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
    press(&mut d, "\x1bc");
    assert!(
        d.run_until(WAIT, |a| a.checkpoints.list.len() == 1).await,
        "no checkpoint listed"
    );
    let screen = render(&d.app, 100, 30);
    assert!(screen.contains("feedback (approve)"), "{screen}");
    assert!(
        d.run_until(WAIT, |a| a.checkpoints.selected_detail().is_some())
            .await
    );
    assert!(render(&d.app, 100, 30).contains("the saved copy will be used"));
    press(&mut d, "\n");
    assert!(
        d.run_until(WAIT, |a| succeeded_as(a, &run_id)).await,
        "{:?}",
        d.app.message
    );
    let run = d.app.entry().and_then(|e| e.run.clone());
    let run = run.unwrap_or_else(|| panic!("no run"));
    assert_eq!(
        run.task("ship").and_then(|t| t.result.clone()),
        Some(Value::from("shipped"))
    );
    // What the checkpoint had done shows as done.
    assert_eq!(run.status_of("build"), TaskStatus::Succeeded);
    assert!(
        run.events
            .iter()
            .any(|e| e.name == "run_started" && e.text.contains("resumed from")),
        "{:?}",
        run.events
    );
    // The history keeps both: the paused run and the resumed one.
    assert!(
        d.run_until(WAIT, |a| a.history.records.len() == 2).await,
        "{:?}",
        d.app.history.records
    );
    let statuses: Vec<_> = d.app.history.records.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(RunStatus::Succeeded), Some(RunStatus::Paused)],
        "{:?}",
        d.app.history.records
    );
    assert!(d.app.history.records[0].resumed_from.is_some());
    let screen = render(&d.app, 100, 30);
    assert!(screen.contains("↪ approve-pause"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_resumes_and_a_changed_file_needs_a_yes() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let flows = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = flows.path().join("approve-pause.ron");
    std::fs::copy(fixture("approve-pause.ron"), &file).unwrap_or_else(|e| panic!("{e}"));
    let mut d = on_file(state.path(), file.clone()).await;
    let run_id = paused_run(&mut d).await;
    // The file changes after the checkpoint (a comment is enough).
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, format!("// edited\n{text}")).unwrap_or_else(|e| panic!("{e}"));
    press(&mut d, "ay");
    assert!(
        d.run_until(WAIT, |a| matches!(
            a.overlay,
            Some(Overlay::Confirm(Question::ResumeAnswered { .. }))
        ))
        .await
    );
    press(&mut d, "y");
    // The resume rule refuses a changed file unless the user says yes (--force).
    assert!(
        d.run_until(WAIT, |a| matches!(
            a.overlay,
            Some(Overlay::Confirm(Question::ResumeChanged { .. }))
        ))
        .await,
        "{:?}",
        d.app.message
    );
    assert!(render(&d.app, 100, 30).contains("approve-pause.ron changed since the checkpoint"));
    press(&mut d, "y");
    assert!(
        d.run_until(WAIT, |a| succeeded_as(a, &run_id)).await,
        "{:?}",
        d.app.message
    );
    assert!(
        d.app
            .message
            .as_ref()
            .is_some_and(|m| m.0.contains("run succeeded")),
        "{:?}",
        d.app.message
    );
}
