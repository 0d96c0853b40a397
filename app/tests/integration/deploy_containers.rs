//! The compose stack of `assets/deploy/` started for real, in containers of the images that
//! `assets/deploy/build-images.sh` builds, on its own Docker network — and broken for real:
//! every headless sample gives a local run's results; a worker container killed mid-group, a
//! worker cut off from Redis (`docker network disconnect`) for longer than its lease, Redis's
//! container restarted, and every worker restarted one after the other during a 2,000-task run
//! — each time every task is committed exactly once and the run ends as a local run does.
//! Nothing of a stack is left afterwards (checked by its compose project's label).
//!
//! Needs a Docker engine and the images; without them each test prints why and passes, unless
//! `GRAFLOW_CONTAINER_TESTS=1` or `GRAFLOW_REQUIRE_SERVICES=1` (`.ci/run` sets both).

use crate::deploy_support;
use crate::fleet_support;

use std::time::Duration;

use deploy_support::{Options, Run, Stack, available, docker};
use fleet_support::{finished, normalized, successes};
use serde_json::Value;

/// Samples that run unattended and offline (as in fleet_cli.rs).
fn headless_samples(stack: &Stack) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(stack.flows.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".ron"))
        .filter(|n| {
            !matches!(
                n.as_str(),
                "docker.ron" | "http-task.ron" | "approval.ron" | "rate-limited-api.ron"
            )
        })
        .collect();
    out.sort();
    out
}

/// The run ended as the local run of the same file: exit code, status, results, and events
/// (as multisets, without times and ids).
fn assert_same_as_local(stack: &Stack, file: &str, remote: &(Option<i32>, Vec<Value>, String)) {
    let (local_code, local, local_err) = stack.run_local(file);
    let (code, events, err) = remote;
    assert_eq!(
        *code,
        local_code,
        "{file}: exit code (stack stderr: {err}; local stderr: {local_err})\n{}",
        stack.logs()
    );
    let (l, r) = (finished(&local), finished(events));
    assert_eq!(r["status"], l["status"], "{file}");
    assert_eq!(r["results"], l["results"], "{file}");
    assert_eq!(r["channel"], l["channel"], "{file}");
    assert_eq!(
        normalized(events),
        normalized(&local),
        "{file}: the events differ"
    );
}

/// Every task of the run succeeded exactly once, and there are `n` of them.
fn assert_each_committed_once(events: &[Value], n: usize) {
    let counts = successes(events);
    let doubled: Vec<_> = counts.iter().filter(|(_, c)| **c != 1).collect();
    assert!(
        doubled.is_empty(),
        "tasks committed more than once: {doubled:?}"
    );
    assert_eq!(counts.len(), n, "tasks committed");
}

/// A group of `n` members, each a shell that sleeps `sleep` seconds and prints its number,
/// between `start` and `done`.
fn group_file(name: &str, n: usize, sleep: &str) -> String {
    let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let tasks: String = (0..n)
        .map(|i| format!("        \"m{i}\": Task(run: Shell(\"sleep {sleep}; echo {i}\")),\n"))
        .collect();
    format!(
        "Workflow(\n    name: \"{name}\",\n    flow: \"start >> g >> done\",\n    max_steps: {},\n    \
         groups: {{ \"g\": Group(members: \"{}\") }},\n    tasks: {{\n        \"start\": Task(run: Value(0)),\n        \
         \"done\": Task(run: Script(\"ctx.inputs.len()\")),\n{tasks}    }},\n)\n",
        n + 10,
        members.join(" | ")
    )
}

/// A group of `n` members that each sleep `sleep` (a `Sleep` task: no process per task).
fn sleep_group_file(name: &str, n: usize, sleep: &str) -> String {
    let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let tasks: String = (0..n)
        .map(|i| format!("\"m{i}\": Task(run: Sleep(\"{sleep}\")),\n"))
        .collect();
    format!(
        "Workflow(name: \"{name}\", flow: \"start >> g >> done\", max_steps: {}, \
         groups: {{\"g\": Group(members: \"{}\")}}, tasks: {{\"start\": Task(run: Value(0)), \
         \"done\": Task(run: Value(\"all done\")),\n{tasks}}})\n",
        n + 10,
        members.join(" | ")
    )
}

fn is_member_start(e: &Value) -> bool {
    e["event"] == "task_started" && e["task"].as_str().is_some_and(|t| t.starts_with('m'))
}

/// The container of a worker that is known to be working: the first one to finish a member.
/// With more members queued than slots, that worker takes its next members at once, so a fault
/// on it hits running attempts (a worker picked blindly may not have started any yet).
fn busy_worker_container(stack: &Stack, run: &Run) -> String {
    let done = run.wait_for(Duration::from_secs(120), |e| {
        e["event"] == "task_succeeded"
            && e["task"].as_str().is_some_and(|t| t.starts_with('m'))
            && e["worker"].is_string()
    });
    // A worker's id is `worker-HOST-PID-NOISE`; a container's host name is its short id.
    let worker = done["worker"].as_str().unwrap_or_default();
    let containers = stack.containers("worker");
    containers
        .iter()
        .find(|c| worker.starts_with(&format!("worker-{c}-")))
        .cloned()
        .unwrap_or_else(|| panic!("no container {containers:?} runs worker {worker}"))
}

/// The sum of a counter over the workers' heartbeat records in Redis.
fn worker_total(stack: &Stack, counter: &str) -> u64 {
    stack
        .redis_cli(&["--scan", "--pattern", "graflow:worker:*"])
        .lines()
        .map(|k| {
            let record: Value =
                serde_json::from_str(&stack.redis_cli(&["GET", k])).unwrap_or_default();
            record[counter].as_u64().unwrap_or(0)
        })
        .sum()
}

/// Another worker took over attempts of the one that was broken (its records are refreshed
/// every heartbeat: wait up to 10 s for them).
fn assert_reclaimed(stack: &Stack) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while worker_total(stack, "reclaimed") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt was reclaimed: the fault did not hit a running attempt\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn finish(mut stack: Stack) {
    let left = stack.down();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_compose_stack_runs_every_headless_sample_as_a_local_run_does() {
    let Some(_one) = available() else { return };
    let stack = Stack::up(Options::default(), &[]);
    // serve answers on its published loopback port.
    let health = http_get(stack.serve_port(), "/health");
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    let files = headless_samples(&stack);
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let remote = stack.run(file);
        assert_same_as_local(&stack, file, &remote);
    }
    // The workers ran the groups' members.
    let processed = worker_total(&stack, "processed");
    assert!(processed > 10, "the workers ran the members ({processed})");
    finish(stack);
}

#[test]
fn a_worker_container_killed_mid_group_loses_no_task() {
    let Some(_one) = available() else { return };
    // 40 members of 2 s over 16 slots: three waves, so the victim is busy when it is killed.
    let file = ("kill.ron", group_file("kill", 40, "2"));
    let stack = Stack::up(Options::default(), &[file]);
    let run = stack.spawn_run("kill.ron", &[]);
    let victim = busy_worker_container(&stack, &run);
    docker(&["kill", &victim]);
    let remote = run.finish(Duration::from_secs(240));
    assert_each_committed_once(&remote.1, 42);
    assert_same_as_local(&stack, "kill.ron", &remote);
    assert_reclaimed(&stack);
    finish(stack);
}

#[test]
fn a_worker_cut_off_from_redis_longer_than_its_lease_loses_no_task() {
    let Some(_one) = available() else { return };
    let file = ("cut.ron", group_file("cut", 24, "1"));
    let stack = Stack::up(
        Options {
            lease: "2s",
            concurrency: 4,
            ..Options::default()
        },
        &[file],
    );
    let run = stack.spawn_run("cut.ron", &[]);
    let victim = busy_worker_container(&stack, &run);
    docker(&["network", "disconnect", &stack.network(), &victim]);
    // Longer than the lease (2 s): its attempts go to the other worker meanwhile.
    std::thread::sleep(Duration::from_secs(6));
    docker(&["network", "connect", &stack.network(), &victim]);
    let remote = run.finish(Duration::from_secs(240));
    assert_each_committed_once(&remote.1, 26);
    assert_same_as_local(&stack, "cut.ron", &remote);
    assert_reclaimed(&stack);
    // The worker that was cut off came back and is healthy.
    stack.wait_container_healthy(&victim);
    finish(stack);
}

#[test]
fn redis_container_restarted_mid_run_loses_no_task() {
    let Some(_one) = available() else { return };
    let file = ("restart.ron", group_file("restart", 40, "0.5"));
    let stack = Stack::up(Options::default(), &[file]);
    let run = stack.spawn_run("restart.ron", &[]);
    run.wait_for(Duration::from_secs(120), is_member_start);
    let redis = stack.containers("redis")[0].clone();
    // SIGTERM: Redis writes its AOF out and exits; Docker starts it again on the same volume.
    docker(&["restart", "-t", "20", &redis]);
    let remote = run.finish(Duration::from_secs(240));
    assert_each_committed_once(&remote.1, 42);
    assert_same_as_local(&stack, "restart.ron", &remote);
    finish(stack);
}

#[test]
fn a_rolling_restart_of_every_worker_during_a_2000_task_run_loses_no_task() {
    let Some(_one) = available() else { return };
    let n = 2000;
    // 2,000 × 250 ms over 24 slots: about 20 s, longer than the three restarts.
    let file = ("rolling.ron", sleep_group_file("rolling", n, "250ms"));
    let stack = Stack::up(
        Options {
            workers: 3,
            lease: "5s",
            grace: "10s",
            concurrency: 8,
        },
        &[file],
    );
    let run = stack.spawn_run("rolling.ron", &[]);
    run.wait_for(Duration::from_secs(120), is_member_start);
    // One worker at a time: SIGTERM (drain), start again, wait until healthy — as
    // `docker compose up` with a new image, `kubectl rollout restart` or systemd do it.
    for id in stack.containers("worker") {
        assert!(
            !run.has_finished(),
            "the run ended before every worker was restarted"
        );
        docker(&["restart", "-t", "40", &id]);
        stack.wait_container_healthy(&id);
    }
    let remote = run.finish(Duration::from_secs(300));
    let (_, events, _) = &remote;
    assert_eq!(finished(events)["status"], "succeeded", "{}", remote.2);
    assert_each_committed_once(events, n + 2);
    assert_same_as_local(&stack, "rolling.ron", &remote);
    finish(stack);
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}
