//! End-to-end tests of the real `graflow` binary in a real pseudo-terminal, its screen read
//! back through a terminal emulator (vt100). Few and focused: start on the samples, run one to
//! success, follow a failing task's log, hot-reload an error and its fix, help on `?`,
//! resizing to 20×5, log lines kept off the screen, a missing path refused, answering an
//! approval inline, resuming a paused run from the checkpoint browser, and `q` quitting with
//! the terminal restored. A newcomer's first hour (issue 11): the first keys move and filter
//! the workflows and switch the theme, `q` asks while a run goes on, runs of `graflow run` in
//! the same folder show up live, and the failing sample shows what a failure looks like.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::pty_support;

use pty_support::{Studio, patience};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/studio")
        .join(name)
}

#[test]
fn starts_on_the_samples_and_q_restores_the_terminal() {
    let s = Studio::start(&[], &repo_root());
    s.wait_for("hello.ron");
    s.wait_for("etl-diamond.ron");
    s.wait_for("Workflows (");
    s.quit();
}

#[test]
fn runs_a_sample_to_success() {
    let mut s = Studio::start(&["studio", "sample-workflows/hello.ron"], &repo_root());
    s.wait_for("greet");
    s.send("r");
    s.wait_for("hello: run succeeded");
    s.wait_for("Runs (1)");
    // The studio stays open: run it again (the history lists the run as it starts).
    s.send("r");
    s.wait_for("Runs (2)");
    s.wait_for("hello: run succeeded");
    s.quit();
}

#[test]
fn follows_a_failing_tasks_log() {
    let mut s = Studio::start(
        &["studio", &fixture("failing.ron").to_string_lossy()],
        &repo_root(),
    );
    s.wait_for("prepare");
    s.send("r");
    s.wait_for("run failed");
    // The failed task is selected and its log shows, newest line last.
    s.wait_for("✗ import");
    s.wait_for("row 7 looks odd");
    s.wait_for("bad input on row 7");
    s.send("\t");
    s.send("3");
    s.wait_for("timeline");
    s.quit();
}

#[test]
fn hot_reloads_an_error_and_its_fix() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("reload.ron");
    let copy = |name: &str| std::fs::copy(fixture(name), &file).unwrap_or_else(|e| panic!("{e}"));
    copy("reload-good.ron");
    let s = Studio::start(&["studio", "."], dir.path());
    s.wait_for("second");
    std::thread::sleep(Duration::from_millis(300));
    copy("reload-bad.ron");
    s.wait_for("reload.ron:3:31");
    s.wait_for("showing the last good version");
    copy("reload-fixed.ron");
    s.wait_gone("reload.ron:3:31");
    s.wait_for("third");
    s.quit();
}

#[test]
fn help_on_question_mark_and_escape() {
    let mut s = Studio::start(&["studio", "sample-workflows/hello.ron"], &repo_root());
    s.wait_for("greet");
    s.send("?");
    s.wait_for("Keys — esc closes");
    s.wait_for("Run the selected workflow");
    s.send("\x1b");
    s.wait_gone("Keys — esc closes");
    s.quit();
}

#[test]
fn survives_a_tiny_terminal() {
    let mut s = Studio::start(&["studio", "sample-workflows"], &repo_root());
    s.wait_for("hello.ron");
    s.resize(20, 5);
    s.send("2");
    s.send("j");
    // The inbox and the checkpoint browser fit too (the badge takes a corner).
    s.send("a");
    s.send("\x1b");
    s.send("c");
    s.send("\x1b");
    std::thread::sleep(Duration::from_millis(300));
    s.resize(120, 36);
    s.send("1");
    s.wait_for("Workflows (");
    s.quit();
}

#[test]
fn log_lines_go_to_the_log_file_not_the_screen() {
    let mut s = Studio::start_with(
        &["studio", "sample-workflows/hello.ron"],
        &repo_root(),
        &[("RUST_LOG", "trace")],
    );
    s.wait_for("greet");
    s.send("r");
    s.wait_for("hello: run succeeded");
    assert!(!s.text().contains("TRACE"), "{}", s.text());
    let log = std::fs::read_to_string(s.state.path().join("studio.log")).unwrap_or_default();
    assert!(log.contains("TRACE"), "nothing logged: {log}");
    s.quit();
}

#[test]
fn refuses_a_missing_path_with_a_clear_message() {
    let s = Studio::start(&["studio", "no/such/folder"], &repo_root());
    s.wait_for("no such file or folder: no/such/folder");
    let mut child = s;
    let deadline = Instant::now() + patience();
    let status = loop {
        if let Ok(Some(st)) = child.child.try_wait() {
            break st;
        }
        assert!(Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(40));
    };
    assert_eq!(status.exit_code(), 2);
}

/// A temporary folder holding a copy of fixture `name`.
fn folder_with(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(fixture(name), dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn answers_an_approval_inline() {
    let dir = folder_with("approve.ron");
    let mut s = Studio::start(&["studio", "."], dir.path());
    s.wait_for("build");
    s.wait_for("⚑ 0");
    s.send("r");
    s.wait_for("approve asks: Ship 1.4.0?");
    s.wait_for("⚑ 1 waiting");
    s.send("a");
    s.wait_for("Inbox — 1 waiting");
    s.wait_for("y approve");
    s.send("y");
    s.wait_for("approve: run succeeded");
    s.wait_for("⚑ 0");
    s.send("\x1b");
    s.wait_for("Workflows (1)");
    s.quit();
}

#[test]
fn resumes_a_paused_run_from_the_checkpoint_browser() {
    let dir = folder_with("approve-pause.ron");
    let mut s = Studio::start(&["studio", "."], dir.path());
    s.wait_for("build");
    s.send("r");
    // The question times out after a second: the run pauses into a checkpoint.
    s.wait_for("run paused");
    s.send("a");
    s.wait_for("Ship 1.4.0 tonight?");
    s.send("y");
    s.wait_for("Resume approve-pause from its checkpoint now?");
    s.send("n");
    s.send("c");
    s.wait_for("Checkpoints (1)");
    s.wait_for("feedback (approve)");
    s.wait_for("enter resumes it");
    s.send("\r");
    s.wait_for("approve-pause: run succeeded");
    s.quit();
}

#[test]
fn the_first_keys_move_and_filter_the_workflows_and_switch_the_theme() {
    let mut s = Studio::start(&["studio", "sample-workflows"], &repo_root());
    s.wait_for("Workflows (");
    // The workflows are listed by file name and have the focus: the first j moves them.
    s.wait_for("agent-loop — list");
    s.send("j");
    s.wait_for("approval — list");
    s.send("/policy");
    s.wait_for("/policy");
    s.wait_for("Workflows (5/");
    s.send("\r");
    s.wait_for("policy-at-least — list");
    s.send("\x1b");
    s.wait_gone("/policy");
    s.send("T");
    s.wait_for("theme: light");
    s.quit();
}

#[test]
fn quit_asks_while_a_run_goes_on() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("slow.ron"),
        r#"Workflow(name: "slow", flow: "wait", tasks: {"wait": Task(run: Sleep("60s"))})"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut s = Studio::start(&["studio", "."], dir.path());
    s.wait_for("wait");
    s.send("r");
    s.wait_for("run running");
    s.send("q");
    s.wait_for("slow running. Quit and cancel it?");
    s.send("n");
    s.wait_gone("Quit and cancel it?");
    s.wait_for("run running");
    // q, then q again: out, with the terminal restored.
    s.send("q");
    s.wait_for("Quit and cancel it?");
    s.send("q");
    s.wait_exit();
}

#[test]
fn runs_of_graflow_run_in_the_same_folder_show_up_live() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("quick.ron"),
        r#"Workflow(name: "quick", flow: "a", tasks: {"a": Task(run: Value(1))})"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = Studio::start(&["studio", "."], dir.path());
    s.wait_for("Runs (0)");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args(["run", "quick.ron"])
        .current_dir(dir.path())
        .env("GRAFLOW_STATE_DIR", s.state.path().join("state"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    s.wait_for("Runs (1)");
    s.wait_for("✓ quick");
    s.quit();
}

#[test]
fn the_failing_sample_shows_what_a_failure_looks_like() {
    let mut s = Studio::start(
        &["studio", "sample-workflows/retries-exhausted.ron"],
        &repo_root(),
    );
    s.wait_for("fetch");
    s.send("r");
    s.wait_for("run failed");
    s.wait_for("attempts 0 to 2 all failed");
    s.wait_for("✗ fetch");
    s.wait_for("the crm answered 503 on attempt 2");
    s.quit();
}
