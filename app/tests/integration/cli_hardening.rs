//! The issue's repros through the real binary, each bounded in time: two checkpoints at once
//! finish, awkward Unicode and deep nesting give exit 2 with a position (no panic, no stack
//! overflow), a huge question timeout from a shell task is refused, and two tasks whose names
//! differ only in punctuation get questions of their own.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

/// Run graflow in `dir` with `args`, killed after `limit`.
fn graflow(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = out.read_to_end(&mut o);
        let _ = err.read_to_end(&mut e);
        (o, e)
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("graflow {args:?} still running after {limit:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = reader.join().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn a_deferred_and_an_immediate_checkpoint_at_once_finish() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("two.ron"),
        r#"Workflow(name: "two", flow: "g", groups: {"g": Group(members: "x | y")}, tasks: {
            "x": Task(run: Script("ctx.checkpoint(); 1")),
            "y": Task(run: Shell("sleep 1; graflow ctx checkpoint-now")),
        })"#,
    )
    .unwrap();
    let out = graflow(
        dir.path(),
        &["run", "--json", "--state-dir", "st", "two.ron"],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = graflow(
        dir.path(),
        &[
            "run",
            "--json",
            "--checkpoint-every-task",
            "--state-dir",
            "st",
            "two.ron",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn awkward_unicode_and_deep_nesting_are_exit_2_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, c) in ['\u{2028}', '\u{0085}', '\u{200E}', '\u{2029}', '😀']
        .iter()
        .enumerate()
    {
        let name = format!("u{i}.ron");
        std::fs::write(
            dir.path().join(&name),
            format!("Workflow(\n  name: \"x\",{c} flow: \"a >> zz\",\n  tasks: {{\"a\": Task(run: Value(1))}},\n)\n"),
        )
        .unwrap();
        files.push(name);
    }
    let deep = 50_000;
    std::fs::write(
        dir.path().join("deep.ron"),
        format!(
            "Workflow(name: \"x\", flow: \"{}a{}\", tasks: {{\"a\": Task(run: Value(1))}})",
            "(".repeat(deep),
            ")".repeat(deep)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("deepv.ron"),
        format!(
            "Workflow(name: \"x\", flow: \"a\", tasks: {{\"a\": Task(run: Value({}1{}))}})",
            "[".repeat(deep),
            "]".repeat(deep)
        ),
    )
    .unwrap();
    files.push("deep.ron".into());
    files.push("deepv.ron".into());
    for f in &files {
        let out = graflow(dir.path(), &["validate", f], Duration::from_secs(60));
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{f}: {err}");
        assert!(err.contains(&format!("{f}:")), "{f}: a position: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("overflow"),
            "{err}"
        );
    }
}

#[test]
fn a_huge_question_timeout_from_a_shell_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ask.ron"),
        r#"Workflow(name: "ask", flow: "a", notify: [], tasks: {
            "a": Task(run: Shell("graflow ctx request-approval 'ok?' 1e20 || echo refused")),
        })"#,
    )
    .unwrap();
    let out = graflow(
        dir.path(),
        &["run", "--json", "--state-dir", "st", "ask.ron"],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("366 days"), "{stdout}");
}
