//! What a newcomer meets on the command line (issue 11): closed pipes end commands quietly,
//! typos get a "did you mean", messages use the file's words and point at the right place,
//! Http errors say what went wrong, attempt numbers follow `ctx.attempt`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

fn graflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", dir.join(".state"))
        .output()
        .expect("graflow runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write workflow");
    p
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

fn sample_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(samples())
        .expect("sample-workflows/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

/// Run `graflow args…` with its standard output closed before it writes a byte (the reader
/// of `… | head -0` went away): it must end quietly, without a panic.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", dir.join(".state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graflow starts");
    drop(child.stdout.take());
    child.wait_with_output().expect("graflow ends")
}

#[test]
fn every_command_ends_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    // A checkpoint to list.
    let out = graflow(
        &samples(),
        &[
            "run",
            "hello.ron",
            "--json",
            "--checkpoint-every-task",
            "--state-dir",
            &dir.path().join(".state").display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = sample_files();
    let mut validate = vec!["validate"];
    validate.extend(files.iter().map(String::as_str));
    let hello = samples().join("hello.ron").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        validate,
        vec!["checkpoints"],
        vec!["checkpoints", "--json"],
        vec!["graph", &hello],
        vec!["graph", &hello, "--format", "dot"],
        vec!["completions", "bash"],
        vec!["feedback", "list", "--all"],
        vec!["--help"],
    ];
    for args in cases {
        let out = with_closed_stdout(dir.path(), &args);
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}

#[test]
fn http_errors_say_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let flow = format!(
        r#"Workflow(name: "h", flow: "call", tasks: {{
            "call": Task(run: Http(url: "http://127.0.0.1:{port}/ping", timeout: "2s")),
        }})"#
    );
    write(dir.path(), "refused.ron", &flow);
    let out = graflow(dir.path(), &["run", "refused.ron"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("connection refused: nothing listens at 127.0.0.1:"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("error sending request"));

    write(
        dir.path(),
        "tls.ron",
        r#"Workflow(name: "t", flow: "call", tasks: {
            "call": Task(run: Http(url: "https://127.0.0.1:9/ping")),
        })"#,
    );
    let out = graflow(dir.path(), &["validate", "tls.ron"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("tls.ron:2:26: warning: task 'call': its url uses https://"),
        "{}",
        stderr(&out)
    );
    let out = graflow(dir.path(), &["run", "tls.ron"]);
    assert!(
        stdout(&out).contains("TLS: https is not available in this build"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn attempt_numbers_are_0_based_like_ctx_attempt() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "flaky.ron",
        r##"Workflow(name: "f", flow: "flaky", tasks: {
            "flaky": Task(
                run: Script(r#"throw `transient error on attempt ${ctx.attempt}`"#),
                retries: (max: 1, backoff: "10ms"),
            ),
        })"##,
    );
    let out = graflow(dir.path(), &["run", "flaky.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "[flaky] failed on attempt 0: transient error on attempt 0; retrying as attempt 1"
        ),
        "{text}"
    );
    assert!(text.contains("[flaky] started (attempt 1)"), "{text}");
    assert!(
        text.contains("[flaky] failed on attempt 1: transient error on attempt 1\n"),
        "{text}"
    );
    assert!(
        text.contains("attempts 0 to 1 all failed (1 retries)"),
        "{text}"
    );
}
