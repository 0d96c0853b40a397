//! Watching the fleet from another process: a run started with `graflow run --backend` writes
//! its events to Redis; `graflow events --attach URL RUN`, started while the run goes on,
//! prints the very lines `graflow run --json` printed (with the worker that did the work) and
//! exits with the run's code; `graflow events --attach URL` lists the run.

use crate::services::Service;

use crate::fleet_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use fleet_support::{Fleet, wait_bounded};

const SLOW_GROUP: &str = r##"Workflow(
    name: "watched",
    flow: "start >> (a | b) >> done",
    tasks: {
        "start": Task(run: Value(1)),
        "a": Task(run: Script(r#" ctx.log("a here"); 2 "#)),
        "b": Task(run: Sleep("1500ms")),
        "done": Task(run: Value(3)),
    },
)"##;

#[test]
fn events_attach_follows_a_run_with_a_sub_run_past_the_sub_runs_end() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    fleet.write(
        "sub.ron",
        r#"Workflow(name: "sub", flow: "one", tasks: {"one": Task(run: Value(1))})"#,
    );
    let file = fleet.write(
        "outer.ron",
        r#"Workflow(name: "outer", flow: "inner >> after", tasks: {
            "inner": Task(run: Workflow(file: "sub.ron")), "after": Task(run: Value(2))})"#,
    );
    let ran = wait_bounded(fleet.spawn_run(&file, &[]), Duration::from_secs(120));
    assert_eq!(ran.status.code(), Some(0), "{}", fleet.logs());
    let run_id = fleet.first_indexed_run(Duration::from_secs(30));
    // The run has ended: the follower reads its whole stream, the sub-run's `run_finished`
    // included, and stops after the run's own.
    let followed = wait_bounded(
        fleet
            .command(&["events", "--attach", &fleet.url, &run_id])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
        Duration::from_secs(60),
    );
    assert_eq!(followed.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        String::from_utf8_lossy(&ran.stdout)
    );
    let ends = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .filter(|l| l.contains("\"event\":\"run_finished\""))
        .count();
    assert_eq!(ends, 2, "the sub-run's and the run's");
}

#[test]
fn events_attach_follows_a_live_run_to_its_end_with_the_run_json_lines() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    let file = fleet.write("watched.ron", SLOW_GROUP);
    let run = fleet.spawn_run(&file, &[]);
    let run_id = fleet.first_indexed_run(Duration::from_secs(30));
    let follower = fleet
        .command(&["events", "--attach", &fleet.url, &run_id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let ran = wait_bounded(run, Duration::from_secs(120));
    let followed = wait_bounded(follower, Duration::from_secs(120));
    let ran_out = String::from_utf8_lossy(&ran.stdout).into_owned();
    let followed_out = String::from_utf8_lossy(&followed.stdout).into_owned();
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&ran.stderr),
        fleet.logs()
    );
    assert_eq!(
        followed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    assert_eq!(
        followed_out, ran_out,
        "the follower prints the run's own JSON lines"
    );
    let lines: Vec<serde_json::Value> = ran_out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for task in ["a", "b"] {
        let done = lines
            .iter()
            .find(|e| e["event"] == "task_succeeded" && e["task"] == task)
            .unwrap_or_else(|| panic!("no task_succeeded for {task}: {ran_out}"));
        assert!(
            done["worker"]
                .as_str()
                .is_some_and(|w| w.starts_with("worker-")),
            "{done}"
        );
    }
    let log = lines
        .iter()
        .find(|e| e["event"] == "task_log" && e["task"] == "a")
        .unwrap_or_else(|| panic!("no log line of a: {ran_out}"));
    assert!(log["worker"].is_string(), "{log}");
    let local = lines
        .iter()
        .find(|e| e["event"] == "task_succeeded" && e["task"] == "start")
        .unwrap_or_else(|| panic!("no start: {ran_out}"));
    assert!(
        local.get("worker").is_none(),
        "the coordinator ran it: {local}"
    );

    let listed = fleet
        .command(&["events", "--attach", &fleet.url])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&run_id) && listed.contains("ended") && listed.contains("succeeded"),
        "{listed}"
    );
}

#[test]
fn events_attach_names_an_unknown_run() {
    needs!(Service::Redis);
    let fleet = Fleet::start(0);
    let out = fleet
        .command(&[
            "events",
            "--attach",
            &fleet.url,
            "nosuchrun",
            "--wait",
            "1s",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no run 'nosuchrun'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const APPROVE_ON_WORKER: &str = r##"Workflow(
    name: "approve-on-worker",
    flow: "start >> (gate | other) >> done",
    tasks: {
        "start": Task(run: Value(1)),
        "gate": Task(run: Approval(prompt: "ship it?", timeout: "120s")),
        "other": Task(run: Value(2)),
        "done": Task(run: Script(r#" ctx.result("gate").approved "#)),
    },
)"##;

/// Milliseconds between two RFC 3339 times.
fn millis_between(from: &str, to: &str) -> f64 {
    let parse = |t: &str| humantime::parse_rfc3339_weak(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    match parse(to).duration_since(parse(from)) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

#[test]
fn an_approval_asked_on_a_worker_is_answered_from_another_process_through_redis() {
    needs!(Service::Redis);
    let fleet = Fleet::start(1);
    let file = fleet.write("approve.ron", APPROVE_ON_WORKER);
    let run = fleet.spawn_run(&file, &[]);
    // The request is in Redis, not in the state folder: list it from another process.
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        assert!(Instant::now() < deadline, "never asked:\n{}", fleet.logs());
        let out = fleet
            .command(&["feedback", "list", "--json", "--backend", &fleet.url])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if let Some(id) = listed.first().and_then(|r| r["id"].as_str()) {
            break id.to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let files = fleet
        .command(&["feedback", "list", "--backend", "local"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        String::from_utf8_lossy(&files.stdout).starts_with("no pending"),
        "{}",
        String::from_utf8_lossy(&files.stdout)
    );
    let answered = fleet
        .command(&[
            "feedback",
            "respond",
            &id,
            "--approve",
            "--backend",
            &fleet.url,
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        answered.status.success(),
        "{}",
        String::from_utf8_lossy(&answered.stderr)
    );
    let ran = wait_bounded(run, Duration::from_secs(120));
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&ran.stderr),
        fleet.logs()
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(fleet_support::finished(&events)["result"], true);
    let gate_done = events
        .iter()
        .find(|e| e["event"] == "task_succeeded" && e["task"] == "gate")
        .unwrap_or_else(|| panic!("gate never succeeded: {events:?}"));
    assert!(gate_done["worker"].is_string(), "the gate ran on a worker");
    let shown = fleet
        .command(&["feedback", "show", &id, "--json", "--backend", &fleet.url])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let shown: serde_json::Value =
        serde_json::from_slice(&shown.stdout).unwrap_or_else(|e| panic!("{e}"));
    let responded_at = shown["response"]["responded_at"]
        .as_str()
        .or_else(|| shown["responded_at"].as_str())
        .unwrap_or_else(|| panic!("no answer time: {shown}"));
    let gate_ts = gate_done["ts"].as_str().unwrap_or_default();
    println!(
        "approval on a worker answered from another process: the task ended {:.1} ms after the answer",
        millis_between(responded_at, gate_ts)
    );
}
