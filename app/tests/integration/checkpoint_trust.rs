//! A checkpoint is data, not code: `graflow resume` of a crafted `.ckpt` (valid header, length
//! and CRC, edited payload) runs no command it lists, writes no file outside the state dir
//! for a run id like `../../x`, and rebuilds tasks added at run time only as sandboxed
//! scripts of a workflow that has Script tasks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

/// CRC-32 (IEEE), as the checkpoint header records it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn read_ckpt(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let nl = bytes.iter().position(|b| *b == b'\n').unwrap();
    serde_json::from_slice(&bytes[nl + 1..]).unwrap()
}

/// Write `payload` as a checkpoint with a correct header.
fn write_ckpt(path: &Path, payload: &Value) {
    let body = serde_json::to_vec(payload).unwrap();
    let header = json!({
        "format": "graflow-checkpoint",
        "schema_version": 1,
        "payload_bytes": body.len(),
        "crc32": format!("{:08x}", crc32(&body)),
    });
    let mut out = serde_json::to_vec(&header).unwrap();
    out.push(b'\n');
    out.extend_from_slice(&body);
    std::fs::write(path, out).unwrap();
}

/// Run `file` with a checkpoint after every task; the first checkpoint's path.
fn first_checkpoint(dir: &Path, file: &Path) -> PathBuf {
    let out = Command::new(bin())
        .current_dir(dir)
        .args([
            "run",
            "--json",
            "--checkpoint-every-task",
            "--state-dir",
            "st",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "checkpoint_saved")
        .expect("a checkpoint");
    dir.join(line["path"].as_str().unwrap())
}

fn resume(dir: &Path, ckpt: &Path) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .args(["resume", "--json", "--state-dir", "st"])
        .arg(ckpt)
        .output()
        .unwrap()
}

const PLAIN: &str = r#"Workflow(name: "plain", flow: "a >> b", tasks: {
    "a": Task(run: Value(1)),
    "b": Task(run: Value(2)),
})"#;

const SCRIPTED: &str = r#"Workflow(name: "scripted", flow: "a >> b", tasks: {
    "a": Task(run: Script("1")),
    "b": Task(run: Value(2)),
})"#;

#[test]
fn a_crafted_dynamic_shell_task_is_refused_and_never_runs() {
    for (name, text) in [("plain.ron", PLAIN), ("scripted.ron", SCRIPTED)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let ckpt = first_checkpoint(dir.path(), &file);
        let pwned = dir.path().join("PWNED");
        for spec in [
            json!({"run": {"Shell": format!("touch '{}'", pwned.display())}}),
            json!({"run": {"Command": ["touch", pwned.display().to_string()]}}),
            json!({"run": {"Script": {"file": "/etc/passwd"}}}),
            json!({"run": {"Script": "1"}, "env": {"X": "1"}}),
        ] {
            let mut payload = read_ckpt(&ckpt);
            payload["snapshot"]["dynamic"] = json!([{"id": "evil", "spec": spec}]);
            payload["snapshot"]["top"]["queue"] = json!([{"task": "evil"}]);
            let crafted = dir.path().join("crafted.ckpt");
            write_ckpt(&crafted, &payload);
            let out = resume(dir.path(), &crafted);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {spec}: {err}");
            assert!(err.contains("evil"), "{err}");
            assert!(!pwned.exists(), "{name} {spec}: the crafted command ran");
        }
    }
}

#[test]
fn a_dynamic_script_is_rebuilt_only_for_a_workflow_with_script_tasks() {
    let spec = json!({"run": {"Script": "ctx.set(\"ran\", true); 7"}});
    for (name, text, allowed) in [
        ("plain.ron", PLAIN, false),
        ("scripted.ron", SCRIPTED, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let ckpt = first_checkpoint(dir.path(), &file);
        let mut payload = read_ckpt(&ckpt);
        payload["snapshot"]["dynamic"] = json!([{"id": "extra", "spec": spec}]);
        payload["snapshot"]["top"]["queue"] = json!([{"task": "extra"}, {"task": "b"}]);
        let crafted = dir.path().join("crafted.ckpt");
        write_ckpt(&crafted, &payload);
        let out = resume(dir.path(), &crafted);
        let expected = if allowed { 0 } else { 2 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn run_ids_that_are_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let file = work.join("plain.ron");
    std::fs::write(&file, PLAIN).unwrap();
    let ckpt = first_checkpoint(&work, &file);
    let outside = dir.path().join("outside");
    for run_id in [
        "../../x".to_string(),
        "../outside".to_string(),
        outside.display().to_string(),
        "a/b".into(),
        "".into(),
        ".".into(),
        "x\u{0}y".into(),
        "é".into(),
        "-rf".into(),
        "x".repeat(500),
    ] {
        let mut payload = read_ckpt(&ckpt);
        payload["run_id"] = json!(run_id);
        let crafted = work.join("crafted.ckpt");
        write_ckpt(&crafted, &payload);
        let out = resume(&work, &crafted);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{run_id:?}: {err}");
        assert!(err.contains("run id"), "{err}");
    }
    // Nothing was written outside the working folder.
    let mut entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["work"]);
}

#[test]
fn a_saved_workflow_copy_runs_only_from_a_checkpoint_this_state_dir_signed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.ron");
    std::fs::write(&file, PLAIN).unwrap();
    let ckpt = first_checkpoint(dir.path(), &file);
    std::fs::remove_file(&file).unwrap();
    // A crafted copy that runs a command, in an otherwise valid checkpoint.
    let pwned = dir.path().join("PWNED");
    let mut payload = read_ckpt(&ckpt);
    payload["workflow"]["source"] = json!(format!(
        r#"Workflow(name: "plain", flow: "a >> b", tasks: {{
            "a": Task(run: Value(1)),
            "b": Task(run: Shell("touch '{}'")),
        }})"#,
        pwned.display()
    ));
    payload["workflow"]["hash"] = Value::Null;
    let crafted = dir.path().join("crafted.ckpt");
    write_ckpt(&crafted, &payload);
    let out = resume(dir.path(), &crafted);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("signature"), "{err}");
    assert!(!pwned.exists(), "the crafted copy ran");
    // The genuine checkpoint, from another state dir: refused the same way.
    let out = Command::new(bin())
        .current_dir(dir.path())
        .args(["resume", "--json", "--state-dir", "elsewhere"])
        .arg(&ckpt)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And from the state dir that wrote it: the saved copy runs.
    let out = resume(dir.path(), &ckpt);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The key is private to its user.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("st/checkpoint.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}
