//! Checkpoints end to end with the real binary: for every headless sample, the run is killed
//! (SIGKILL) right after each of its checkpoints in turn, resumed with `graflow resume`, and
//! must end with the same status, results and channel as an uninterrupted run. Plus: a kill
//! while a large checkpoint is being written leaves every checkpoint on disk loadable, and
//! damaged checkpoints are refused with exit 2 and a clear message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

/// Samples that need nothing outside this machine and run to success (a sample that fails
/// on purpose says `// Expect: exit 1` in its opening comment).
fn headless_samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            ![
                "Http(",
                "Approval(",
                "Feedback(",
                "Docker(",
                "// Expect: exit",
            ]
            .iter()
            .any(|kind| text.contains(kind))
        })
        .collect();
    v.sort();
    v
}

fn parse_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Run to the end; returns every event.
fn run_to_end(file: &Path, state: &Path) -> Vec<Value> {
    let out = Command::new(bin())
        .args(["run", "--json", "--checkpoint-every-task", "--state-dir"])
        .arg(state)
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let events = parse_lines(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    events
}

/// Run until the `n`-th checkpoint is saved, then SIGKILL the process; returns that
/// checkpoint's path.
fn run_and_kill_after(file: &Path, state: &Path, n: usize) -> PathBuf {
    let mut child = Command::new(bin())
        .args(["run", "--json", "--checkpoint-every-task", "--state-dir"])
        .arg(state)
        .arg(file)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["event"] == "checkpoint_saved" {
            seen += 1;
            if seen == n {
                child.kill().unwrap(); // SIGKILL
                let _ = child.wait();
                return PathBuf::from(event["path"].as_str().unwrap());
            }
        }
    }
    let _ = child.wait();
    panic!("{}: the run ended before checkpoint {n}", file.display());
}

fn resume(path: &Path, state: &Path) -> Vec<Value> {
    let out = Command::new(bin())
        .args(["resume", "--json", "--state-dir"])
        .arg(state)
        .arg(path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "resume {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_lines(&out.stdout)
}

fn finished(events: &[Value]) -> &Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "run_finished")
        .expect("run_finished")
}

#[test]
fn every_sample_resumes_after_a_kill_at_each_checkpoint() {
    let samples = headless_samples();
    assert!(samples.len() >= 10, "samples found: {samples:?}");
    for file in samples {
        let dir = tempfile::tempdir().unwrap();
        let full = run_to_end(&file, &dir.path().join("full"));
        let expected = finished(&full);
        let checkpoints = full
            .iter()
            .filter(|e| e["event"] == "checkpoint_saved")
            .count();
        assert!(checkpoints > 0, "{} wrote no checkpoint", file.display());
        for n in 1..=checkpoints {
            let state = dir.path().join(format!("kill{n}"));
            let ckpt = run_and_kill_after(&file, &state, n);
            let resumed = resume(&ckpt, &state);
            let got = finished(&resumed);
            let what = format!("{} resumed from checkpoint {n}", file.display());
            assert_eq!(got["status"], expected["status"], "{what}");
            assert_eq!(got["results"], expected["results"], "{what}");
            assert_eq!(got["channel"], expected["channel"], "{what}");
            assert_eq!(got["result"], expected["result"], "{what}");
            assert_eq!(resumed[0]["event"], "run_started");
            assert!(
                resumed[0]["resumed_from"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(".ckpt")),
                "{what}"
            );
        }
    }
}

/// A workflow whose second checkpoint is large (a 12 MB result), so a kill can land while it
/// is being written.
fn big_workflow() -> String {
    let mb = "x".repeat(1 << 20);
    let items: Vec<String> = (0..12).map(|_| format!("\"{mb}\"")).collect();
    format!(
        r#"Workflow(name: "big", flow: "small >> grow >> after", tasks: {{
            "small": Task(run: Value("first")),
            "grow": Task(run: Value([{}])),
            "after": Task(run: Sleep("1s")),
        }})"#,
        items.join(",")
    )
}

#[test]
fn a_kill_during_a_checkpoint_write_leaves_every_checkpoint_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.ron");
    std::fs::write(&file, big_workflow()).unwrap();
    for delay_ms in [5u64, 20, 60, 150] {
        let state = dir.path().join(format!("s{delay_ms}"));
        let first = run_and_kill_after_delay(&file, &state, delay_ms);
        let ckpt_dir = state.join("checkpoints");
        for entry in std::fs::read_dir(&ckpt_dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|x| x == "ckpt") {
                let out = Command::new(bin())
                    .args(["checkpoints", "--json"])
                    .arg(&ckpt_dir)
                    .output()
                    .unwrap();
                assert!(out.status.success());
                // Every .ckpt present is complete: resuming it is accepted (then interrupted
                // by its own run ending).
                let check = Command::new(bin())
                    .args(["resume", "--json", "--state-dir"])
                    .arg(&state)
                    .arg(&p)
                    .output()
                    .unwrap();
                assert_eq!(
                    check.status.code(),
                    Some(0),
                    "{}: {}",
                    p.display(),
                    String::from_utf8_lossy(&check.stderr)
                );
            }
        }
        assert!(first.exists(), "the first checkpoint survives");
    }
}

/// Start the big run, wait for its first checkpoint, kill it `delay_ms` later (while the big
/// one is likely being written); returns the first checkpoint.
fn run_and_kill_after_delay(file: &Path, state: &Path, delay_ms: u64) -> PathBuf {
    let mut child = Command::new(bin())
        .args(["run", "--json", "--checkpoint-every-task", "--state-dir"])
        .arg(state)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = loop {
        let line = lines.next().expect("an event").unwrap();
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["event"] == "checkpoint_saved" {
            break PathBuf::from(event["path"].as_str().unwrap());
        }
    };
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    child.kill().unwrap();
    let _ = child.wait();
    first
}

#[test]
fn damaged_checkpoints_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("st");
    let events = run_to_end(&samples_dir().join("hello.ron"), &state);
    let path = PathBuf::from(
        events
            .iter()
            .find(|e| e["event"] == "checkpoint_saved")
            .unwrap()["path"]
            .as_str()
            .unwrap(),
    );
    let bytes = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", bytes[..bytes.len() - 7].to_vec(), "truncated"),
        (
            "over-long",
            [bytes.as_slice(), b"appended\n"].concat(),
            "too long",
        ),
        (
            "bit-flipped",
            {
                let mut b = bytes.clone();
                let i = b.len() - 20;
                b[i] ^= 0x04;
                b
            },
            "corrupted",
        ),
        (
            "newer",
            String::from_utf8(bytes.clone())
                .unwrap()
                .replacen("\"schema_version\":1", "\"schema_version\":7", 1)
                .into_bytes(),
            "schema 7",
        ),
        (
            "garbage",
            b"not a checkpoint at all".to_vec(),
            "not a graflow checkpoint",
        ),
        ("empty", Vec::new(), "not a graflow checkpoint"),
    ];
    for (name, content, expect) in cases {
        let p = dir.path().join(format!("{name}.ckpt"));
        std::fs::write(&p, content).unwrap();
        let out = Command::new(bin())
            .args(["resume"])
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(expect) && err.contains("refused"),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let out = Command::new(bin())
        .args(["resume"])
        .arg(dir.path().join("missing.ckpt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_changed_workflow_file_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wf.ron");
    std::fs::write(&file, r#"Workflow(name: "w", flow: "a >> b", tasks: {"a": Task(run: Value(1)), "b": Task(run: Value(2))})"#).unwrap();
    let state = dir.path().join("st");
    let events = run_to_end(&file, &state);
    let ckpt = events
        .iter()
        .find(|e| e["event"] == "checkpoint_saved")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&file, r#"Workflow(name: "w", flow: "a >> b", tasks: {"a": Task(run: Value(1)), "b": Task(run: Value(3))})"#).unwrap();
    let out = Command::new(bin())
        .args(["resume", &ckpt, "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("changed since the checkpoint") && err.contains("--force"),
        "{err}"
    );
    let out = Command::new(bin())
        .args(["resume", &ckpt, "--json", "--force", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        finished(&parse_lines(&out.stdout))["results"]["b"],
        3,
        "the file as it is now"
    );
    // A workflow file that is gone: the copy in the checkpoint is used.
    std::fs::remove_file(&file).unwrap();
    let out = Command::new(bin())
        .args(["resume", &ckpt, "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is gone"));
    assert_eq!(
        finished(&parse_lines(&out.stdout))["results"]["b"],
        2,
        "the saved copy"
    );
}

#[test]
fn checkpoints_lists_newest_first_with_size() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("st");
    run_to_end(&samples_dir().join("hello.ron"), &state);
    let out = Command::new(bin())
        .args(["checkpoints", "--state-dir"])
        .arg(&state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(" hello ")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains("deferred (answer)") && rows[2].contains("deferred (greet)"),
        "{text}"
    );
    assert!(rows[0].contains(" B ") || rows[0].contains("KB"), "{text}");
    let json = Command::new(bin())
        .args(["checkpoints", "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let infos = parse_lines(&json.stdout);
    assert_eq!(infos.len(), 3);
    assert!(infos[0]["size_bytes"].as_u64().unwrap() > 100);
    assert_eq!(infos[0]["metadata"]["task_id"], "answer");
}

#[test]
fn keep_for_deletes_checkpoints_older_than_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("st");
    let hello = samples_dir().join("hello.ron");
    run_to_end(&hello, &state);
    // Age the first run's checkpoints by two days, in the listing they are read from.
    let folder = state.join("checkpoints");
    let metas: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    assert_eq!(metas.len(), 3, "{metas:?}");
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    for meta in &metas {
        let mut info: Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
        info["created_at"] = humantime::format_rfc3339_micros(two_days_ago)
            .to_string()
            .into();
        std::fs::write(meta, serde_json::to_vec(&info).unwrap()).unwrap();
    }
    let out = Command::new(bin())
        .args([
            "run",
            "--json",
            "--checkpoint-every-task",
            "--keep-for",
            "1d",
        ])
        .arg("--state-dir")
        .arg(&state)
        .arg(&hello)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = finished(&parse_lines(&out.stdout))["run_id"].clone();
    let json = Command::new(bin())
        .args(["checkpoints", "--json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let left = parse_lines(&json.stdout);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|i| i["run_id"] == run_id), "{left:?}");
    for meta in &metas {
        assert!(!meta.exists(), "{} was kept", meta.display());
    }

    let refused = Command::new(bin())
        .args(["run", "--keep-for", "0s"])
        .arg(&hello)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("longer than zero"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn big_checkpoints_are_compressed_listed_with_their_ratio_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.ron");
    std::fs::write(&file, big_workflow()).unwrap();
    let state = dir.path().join("st");
    let full = run_to_end(&file, &state);
    let folder = state.join("checkpoints");
    let json = Command::new(bin())
        .args(["checkpoints", "--json"])
        .arg(&folder)
        .output()
        .unwrap();
    let infos = parse_lines(&json.stdout);
    let packed: Vec<&Value> = infos
        .iter()
        .filter(|i| i["content_bytes"].as_u64().is_some())
        .collect();
    assert!(!packed.is_empty(), "{infos:?}");
    for info in &packed {
        let (content, size) = (
            info["content_bytes"].as_u64().unwrap(),
            info["size_bytes"].as_u64().unwrap(),
        );
        assert!(content > 12 << 20 && size * 10 < content, "{info}");
    }
    // Every checkpoint of this run carries the 12 MB workflow file's text: all are packed.
    assert_eq!(packed.len(), infos.len(), "{infos:?}");
    let text = Command::new(bin())
        .args(["checkpoints"])
        .arg(&folder)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("(zstd: ") && text.contains("× smaller)"),
        "{text}"
    );

    // Resuming from the compressed checkpoint ends as the uninterrupted run did.
    let after_grow = packed
        .iter()
        .find(|i| i["metadata"]["task_id"] == "grow")
        .expect("the checkpoint after grow");
    let resumed = resume(Path::new(after_grow["path"].as_str().unwrap()), &state);
    let (a, b) = (finished(&full), finished(&resumed));
    assert_eq!(a["status"], "succeeded");
    assert_eq!(a["status"], b["status"]);
    assert_eq!(a["results"], b["results"]);
}
