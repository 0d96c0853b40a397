//! `graflow run --backend redis://…` with two real `graflow worker` processes: every sample
//! that runs offline gives the events and results of a local run; feedback asked on a worker
//! is answered from the CLI; a run paused on the fleet resumes with `--backend`; workers serve
//! their metrics; a bad backend is refused with a clear message.

use crate::services::Service;

use crate::fleet_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fleet_support::{Fleet, finished, normalized, samples};
use serde_json::{Value, json};

/// Samples that run offline and unattended (Docker, HTTP and approval samples need a daemon,
/// a server or a person).
fn headless_samples() -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(samples())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .filter(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            !matches!(
                name,
                "docker" | "http-task" | "approval" | "rate-limited-api"
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_offline_sample_gives_the_local_events_and_results_on_the_fleet() {
    needs!(Service::Redis);
    let fleet = Fleet::start(2);
    let files = headless_samples();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let (local_code, local, _) = fleet.run_local(file, &[]);
        let (code, remote, err) = fleet.run(file, &[]);
        assert_eq!(
            code,
            local_code,
            "{}: {err}\n{}",
            file.display(),
            fleet.logs()
        );
        let (l, r) = (finished(&local), finished(&remote));
        assert_eq!(r["status"], l["status"], "{}", file.display());
        assert_eq!(r["results"], l["results"], "{}", file.display());
        assert_eq!(
            normalized(&remote),
            normalized(&local),
            "{}: the events differ",
            file.display()
        );
    }
    let processed: u64 = fleet
        .redis
        .cli(&["KEYS", "graflow:worker:*"])
        .lines()
        .map(|k| {
            let record: Value =
                serde_json::from_str(&fleet.redis.cli(&["GET", k])).unwrap_or_default();
            record["processed"].as_u64().unwrap_or(0)
        })
        .sum();
    assert!(
        processed > 10,
        "the workers ran the groups' members ({processed})"
    );
}

const ASK: &str = r##"Workflow(
    name: "ask-on-worker",
    flow: "start >> (gate | note) >> done",
    tasks: {
        "start": Task(run: Value(1)),
        "gate": Task(run: Approval(prompt: "ship it?", timeout: "TIMEOUT")),
        "note": Task(run: Script(r#" let t = ctx.request_text("why?", SECS); ctx.log(`got ${t}`); t "#)),
        "done": Task(run: Script(r#" #{ gate: ctx.result("gate").approved, note: ctx.result("note") } "#)),
    },
)"##;

fn ask(timeout_secs: u32) -> String {
    ASK.replace("TIMEOUT", &format!("{timeout_secs}s"))
        .replace("SECS", &format!("{timeout_secs}.0"))
}

#[test]
fn feedback_asked_on_a_worker_is_answered_from_the_cli() {
    needs!(Service::Redis);
    let fleet = Fleet::start(2);
    let file = fleet.write("ask.ron", &ask(60));
    let mut cmd = fleet.command(&[
        "run",
        file.to_str().unwrap_or_default(),
        "--json",
        "--backend",
        &fleet.url,
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    while answered < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        answered += fleet.answer_all_with(|a| fleet.command(a));
    }
    assert_eq!(answered, 2, "both questions were asked");
    let out = fleet.succeeded(child, Duration::from_secs(60));
    let events = fleet_support::json_lines(&out.stdout);
    assert_eq!(
        finished(&events)["result"],
        json!({"gate": true, "note": "because"})
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "task_log" && e["line"] == "got because")
    );
    let asked = events
        .iter()
        .filter(|e| e["event"] == "feedback_requested")
        .count();
    assert_eq!(asked, 2);
}

#[test]
fn a_run_paused_on_the_fleet_resumes_with_backend() {
    needs!(Service::Redis);
    let fleet = Fleet::start(2);
    let file = fleet.write("ask.ron", &ask(1));
    let (code, events, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(3), "{err}");
    let ckpt = finished(&events)["checkpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no checkpoint: {events:?}"))
        .to_string();
    assert_eq!(fleet.answer_all_with(|a| fleet.command(a)), 2);
    let (code, resumed, err) = fleet_support::run_bounded(fleet.command(&[
        "resume",
        &ckpt,
        "--json",
        "--backend",
        &fleet.url,
    ]));
    assert_eq!(
        code,
        Some(0),
        "{err}\n{:?}\n{}",
        resumed.last(),
        fleet.logs()
    );
    assert_eq!(
        finished(&resumed)["result"],
        json!({"gate": true, "note": "because"})
    );
}

#[test]
fn a_bad_backend_is_refused_with_its_reason() {
    needs!(Service::Redis);
    let fleet = Fleet::start(0);
    let file = samples().join("hello.ron");
    let path = file.to_string_lossy().to_string();
    for (url, says) in [
        ("http://127.0.0.1:1", "expected redis://"),
        (
            "redis://127.0.0.1:1",
            "cannot reach Redis at redis://127.0.0.1:1",
        ),
    ] {
        let (code, _, err) =
            fleet_support::run_bounded(fleet.command(&["run", &path, "--backend", url]));
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
    }
    // GRAFLOW_BACKEND is the same switch; `local` forces a local run.
    let mut cmd = fleet.command(&["run", &path, "--json"]);
    cmd.env("GRAFLOW_BACKEND", "redis://127.0.0.1:1");
    let (code, _, err) = fleet_support::run_bounded(cmd);
    assert_eq!(code, Some(2), "{err}");
    let mut cmd = fleet.command(&["run", &path, "--json", "--backend", "local"]);
    cmd.env("GRAFLOW_BACKEND", "redis://127.0.0.1:1");
    let (code, _, err) = fleet_support::run_bounded(cmd);
    assert_eq!(code, Some(0), "{err}");
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn a_worker_serves_prometheus_metrics_and_a_heartbeat_record() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(0);
    let port = fleet_support::redis_server::free_port();
    let addr = format!("127.0.0.1:{port}");
    fleet.spawn_worker(&["--lease", "2s", "--metrics-addr", &addr], &[]);
    fleet.wait_for_workers(1);
    let (code, _, err) = fleet.run(&samples().join("policy-best-effort.ron"), &[]);
    assert_eq!(code, Some(0), "{err}");
    let text = http_get(&addr, "/metrics");
    for name in [
        "graflow_worker_processed_total",
        "graflow_worker_succeeded_total",
        "graflow_worker_failed_total",
        "graflow_worker_retried_total",
        "graflow_worker_reclaimed_total",
        "graflow_worker_dead_lettered_total",
        "graflow_worker_busy_slots",
        "graflow_worker_uptime_seconds",
        "graflow_worker_task_duration_seconds_bucket",
        "graflow_worker_queue_wait_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let processed = text
        .lines()
        .find(|l| l.starts_with("graflow_worker_processed_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(processed >= 3, "{text}");
    let health = http_get(&addr, "/healthz");
    assert!(health.contains("\"state\""), "{health}");
    let key = fleet.redis.cli(&["KEYS", "graflow:worker:*"]);
    let record: Value =
        serde_json::from_str(&fleet.redis.cli(&["GET", key.trim()])).unwrap_or_default();
    assert_eq!(record["concurrency"], json!(8));
    assert_eq!(record["queues"], json!(["default"]));
}
