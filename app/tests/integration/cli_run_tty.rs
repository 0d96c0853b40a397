//! `graflow run` on a real terminal (a pseudo-terminal read back through vt100): the live view
//! shows each task with its status and duration and the counts, ends with the run's summary,
//! and leaves an ordinary terminal behind; errors of several lines leave no stale frame.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Run `graflow args…` in a 100×30 terminal; returns the exit code and the final screen.
fn run_in_terminal(args: &[&str], cwd: &Path) -> (u32, String) {
    run_in_terminal_sized(args, cwd, 30)
}

/// Run `graflow args…` in a 100-column terminal of `rows` rows.
fn run_in_terminal_sized(args: &[&str], cwd: &Path, rows: u16) -> (u32, String) {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows,
            cols: 100,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal");
    let state = tempfile::tempdir().unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_graflow"));
    cmd.args(args);
    cmd.cwd(cwd);
    cmd.env("TERM", "xterm-256color");
    cmd.env("GRAFLOW_STATE_DIR", state.path());
    cmd.env_remove("NO_COLOR");
    let mut child = pair.slave.spawn_command(cmd).expect("graflow starts");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let reading = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let status = child.wait().expect("graflow ends");
    drop(pair.master);
    let bytes = reading.join().unwrap_or_default();
    let (rows, cols) = (
        std::num::NonZeroU16::new(rows).unwrap(),
        std::num::NonZeroU16::new(100).unwrap(),
    );
    let mut screen = vt100::Parser::new(rows, cols, 0);
    screen.process(&bytes);
    assert!(!screen.screen().hide_cursor(), "the cursor is left visible");
    std::thread::sleep(Duration::from_millis(10));
    (status.exit_code(), screen.screen().contents())
}

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

#[test]
fn the_live_view_ends_with_every_task_and_the_summary() {
    let (code, screen) = run_in_terminal(&["run", "policy-best-effort.ron"], &samples());
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("policy-best-effort ("), "header: {screen}");
    assert!(
        screen.contains("0 running, 4 done, 1 failed"),
        "counts: {screen}"
    );
    for task in ["build", "email", "pager", "done"] {
        assert!(screen.contains(&format!("✓ {task}")), "{task}: {screen}");
    }
    assert!(
        screen.contains("✗ chat  chat service unavailable"),
        "the failed member: {screen}"
    );
    assert!(screen.contains("run succeeded in"), "{screen}");
    assert!(
        !screen.contains('⠿'),
        "no task is left shown as running: {screen}"
    );
}

#[test]
fn a_failing_run_ends_with_its_error_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.ron"),
        r#"Workflow(name: "bad", flow: "a >> b", tasks: {"a": Task(run: Shell("echo working; exit 3")), "b": Task(run: Noop)})"#,
    )
    .unwrap();
    let (code, screen) = run_in_terminal(&["run", "bad.ron"], dir.path());
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("[a] | working"),
        "the task's output: {screen}"
    );
    assert!(screen.contains("run failed after"), "{screen}");
    assert!(screen.contains("exited with status 3"), "{screen}");
}

#[test]
fn a_multi_line_error_leaves_no_stale_frames() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("multi.ron"),
        r#"Workflow(name: "multi", flow: "work", groups: {"work": Group(members: "bad | slow", policy: BestEffort)}, tasks: {
            "bad": Task(run: Shell("printf 'first line\\nsecond line\\nthird line\\n' >&2; exit 4"), retries: (max: 3, backoff: "150ms")),
            "slow": Task(run: Sleep("1500ms")),
        })"#,
    )
    .unwrap();
    // Tall enough that nothing scrolls away: every frame ever drawn would still be on screen.
    let (code, screen) = run_in_terminal_sized(&["run", "multi.ron"], dir.path(), 80);
    assert_eq!(code, 0, "{screen}");
    let headers = screen.lines().filter(|l| l.starts_with("multi (")).count();
    assert_eq!(headers, 1, "stale frames left behind:\n{screen}");
    assert!(
        screen.contains(" ⏎ "),
        "the error is shown on one row: {screen}"
    );
}
