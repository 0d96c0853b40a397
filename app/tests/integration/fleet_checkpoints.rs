//! Checkpoints of fleet runs kept in Redis, end to end with real `graflow worker`s: a run on
//! machine A (its own state dir) is resumed on machine B (another state dir, none of A's
//! files) by the names `graflow checkpoints --backend` lists, and ends as the uninterrupted
//! run did; a run paused for feedback on A is answered and resumed on B; `--keep-last`
//! prunes the fleet's copies too; a damaged copy in Redis is refused naming its key.

use crate::services::Service;

use crate::fleet_support;

use std::path::PathBuf;
use std::process::Command;

use fleet_support::{Fleet, finished};
use serde_json::{Value, json};

const CHECKPOINTED: &str = r##"Workflow(
    name: "fleet-ckpt",
    flow: "start >> (a | b) >> merge >> end",
    tasks: {
        "start": Task(run: Script(r#" ctx.set("n", 1); ctx.checkpoint(#{ at: "start" }); 1 "#)),
        "a": Task(run: Script(r#" ctx.set("a", 10); 10 "#)),
        "b": Task(run: Script(r#" ctx.set("b", 20); 20 "#)),
        "merge": Task(run: Script(r#" let s = ctx.result("a") + ctx.result("b"); ctx.set("sum", s); ctx.checkpoint(); s "#)),
        "end": Task(run: Script(r#" #{ sum: ctx.get("sum"), n: ctx.get("n") } "#)),
    },
)"##;

const PAUSING: &str = r##"Workflow(
    name: "pause-on-a",
    flow: "(x | y) >> gate >> done",
    tasks: {
        "x": Task(run: Script(r#" ctx.set("x", 1); 1 "#)),
        "y": Task(run: Script(r#" ctx.set("y", 2); 2 "#)),
        "gate": Task(run: Approval(prompt: "ship it?", timeout: "1s")),
        "done": Task(run: Script(r#" #{ gate: ctx.result("gate").approved, sum: ctx.result("x") + ctx.result("y") } "#)),
    },
)"##;

/// Machine A's state dir (where `Fleet::command` keeps state).
fn state_a(fleet: &Fleet) -> PathBuf {
    fleet.dir.path().join("state")
}

/// A `graflow` command on machine B: the same fleet, another state dir.
fn on_b(fleet: &Fleet, args: &[&str]) -> Command {
    let mut cmd = fleet.command(args);
    cmd.env("GRAFLOW_STATE_DIR", fleet.dir.path().join("state-b"));
    cmd
}

/// `graflow checkpoints --backend URL --json` on machine B.
fn fleet_listing(fleet: &Fleet) -> Vec<Value> {
    let out = on_b(fleet, &["checkpoints", "--backend", &fleet.url, "--json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fleet_support::json_lines(&out.stdout)
}

#[test]
fn a_fleet_run_checkpointed_on_one_machine_resumes_on_another_from_redis() {
    needs!(Service::Redis);
    let fleet = Fleet::start(2);
    let file = fleet.write("ckpt.ron", CHECKPOINTED);
    let (code, full, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    let full = finished(&full).clone();
    assert_eq!(full["result"], json!({"sum": 30, "n": 1}));

    let listed = fleet_listing(&fleet);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for entry in &listed {
        assert_eq!(entry["workflow"], "fleet-ckpt");
        assert_eq!(entry["stored_in"], "redis");
        assert!(
            entry["key"].as_str().is_some_and(|k| k.contains("{r:")),
            "{entry}"
        );
        assert!(entry["size_bytes"].as_u64().is_some_and(|n| n > 0));
        assert!(entry.get("local_path").is_none(), "B has no files: {entry}");
    }
    let table = on_b(&fleet, &["checkpoints", "--backend", &fleet.url])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    let references: Vec<String> = listed
        .iter()
        .map(|e| e["reference"].as_str().unwrap_or_default().to_string())
        .collect();
    for reference in &references {
        assert!(table.contains(reference.as_str()), "{table}");
    }
    assert!(table.contains("in Redis at redis://127.0.0.1:"), "{table}");

    // `GRAFLOW_BACKEND` alone lists what this machine holds (B holds nothing yet); naming a
    // folder lists the folder.
    let by_env = on_b(&fleet, &["checkpoints", "--json"])
        .env("GRAFLOW_BACKEND", &fleet.url)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fleet_support::json_lines(&by_env.stdout).len(), 0);
    let folder = state_a(&fleet).join("checkpoints");
    let by_dir = on_b(
        &fleet,
        &["checkpoints", "--json", folder.to_str().unwrap_or_default()],
    )
    .env("GRAFLOW_BACKEND", &fleet.url)
    .output()
    .unwrap_or_else(|e| panic!("{e}"));
    let local = fleet_support::json_lines(&by_dir.stdout);
    assert_eq!(local.len(), 2, "A's folder");
    assert!(
        local.iter().all(|e| e.get("stored_in").is_none()),
        "{local:?}"
    );

    // No shared disk: A's files are gone; B resumes each checkpoint from Redis by its name.
    std::fs::remove_dir_all(state_a(&fleet)).unwrap_or_else(|e| panic!("{e}"));
    for reference in &references {
        let (code, resumed, err) = fleet_support::run_bounded(on_b(
            &fleet,
            &["resume", reference, "--json", "--backend", &fleet.url],
        ));
        assert_eq!(code, Some(0), "{reference}: {err}\n{}", fleet.logs());
        assert!(err.contains("not on this machine"), "{err}");
        let resumed = finished(&resumed);
        for field in ["status", "result", "results", "channel"] {
            assert_eq!(resumed[field], full[field], "{reference}: {field}");
        }
    }

    // Without the backend, B still looks at its own folder only (and A's name is not there).
    let out = on_b(&fleet, &["resume", &references[0], "--json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));

    // Retention: `--keep-last 1` prunes the fleet's copies of the workflow too.
    let (code, _, err) = fleet.run(&file, &["--keep-last", "1"]);
    assert_eq!(code, Some(0), "{err}");
    let listed = fleet_listing(&fleet);
    assert_eq!(listed.len(), 1, "{listed:?}");

    // A damaged copy in Redis is refused (exit 2) with a message naming its key.
    let key = listed[0]["key"].as_str().unwrap_or_default().to_string();
    let reference = listed[0]["reference"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    std::fs::remove_dir_all(state_a(&fleet)).unwrap_or_else(|e| panic!("{e}"));
    fleet.redis.cli(&["SETRANGE", &key, "300", "~"]);
    let out = on_b(&fleet, &["resume", &reference, "--backend", &fleet.url])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&key) && err.contains("corrupted"), "{err}");
}

#[test]
fn a_run_paused_on_machine_a_is_answered_and_resumed_on_machine_b() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    let file = fleet.write("pause.ron", PAUSING);
    let (code, events, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(3), "{err}\n{}", fleet.logs());
    let ckpt = PathBuf::from(
        finished(&events)["checkpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("no checkpoint: {events:?}")),
    );
    assert!(ckpt.starts_with(state_a(&fleet)), "{}", ckpt.display());
    assert_eq!(fleet.answer_all_with(|a| on_b(&fleet, a)), 1);
    std::fs::remove_dir_all(state_a(&fleet)).unwrap_or_else(|e| panic!("{e}"));
    // B is given the path A printed: not there, so its name is looked up in Redis.
    let (code, resumed, err) = fleet_support::run_bounded(on_b(
        &fleet,
        &[
            "resume",
            ckpt.to_str().unwrap_or_default(),
            "--json",
            "--backend",
            &fleet.url,
        ],
    ));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_eq!(
        finished(&resumed)["result"],
        json!({"gate": true, "sum": 3})
    );
}
