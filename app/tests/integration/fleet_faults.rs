//! Faults on a real fleet, each bounded in time and on loopback: workers killed (-9) before
//! an attempt starts, in the middle of it, after its body and after its commit; a worker
//! frozen past its lease; SIGTERM drains; a poison task that kills its worker every time;
//! Redis killed and restarted; the network to a worker cut shorter and longer than the
//! lease; the coordinator killed and the run resumed; a seeded chaos soak. In every one each
//! task's outcome is committed exactly once (one `task_succeeded` per task), nothing is lost,
//! and the results are a local run's.

use crate::services::Service;

use crate::fleet_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fleet_support::proxy::Proxy;
use fleet_support::{Fleet, RedisServer, collect, finished, successes};
use serde_json::Value;

/// A workflow: `start >> g >> end`, where group `g` has `n` members running `body` (with
/// `{i}` replaced by the member's number); `end` counts the members' executions recorded in
/// the channel list `exec` (bodies append to it).
fn group_workflow(n: usize, body: &str) -> String {
    let members: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let tasks: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "\"t{i}\": Task(run: {}),",
                body.replace("{i}", &i.to_string())
            )
        })
        .collect();
    format!(
        r##"Workflow(
    name: "faults",
    flow: "start >> g >> end",
    groups: {{"g": Group(members: "{}")}},
    tasks: {{
        "start": Task(run: Value("go")),
        {}
        "end": Task(run: Script(r#" ctx.get("exec", []).len() "#)),
    }},
)"##,
        members.join(" | "),
        tasks.join("\n        ")
    )
}

/// A member that records its execution, then sleeps `secs`.
fn shell_member(secs: f64) -> String {
    format!(
        r#"Shell("graflow ctx append exec t{{i}} >/dev/null && sleep {secs} && echo '\"r{{i}}\"' > \"$GRAFLOW_RESULT_FILE\"")"#
    )
}

/// A member that records its execution in a script.
const SCRIPT_MEMBER: &str =
    r##"Script(r#" ctx.append("exec", ctx.task_id); `r${ctx.task_id}` "#)"##;

/// The run succeeded, every task succeeded exactly once, and the results are `expected`'s.
fn assert_once(events: &[Value], expected: &[Value], fleet: &Fleet, what: &str) {
    let end = finished(events);
    assert_eq!(
        end["status"],
        "succeeded",
        "{what}: {end}\n{}",
        fleet.logs()
    );
    let counts = successes(events);
    for (task, n) in &counts {
        assert_eq!(*n, 1, "{what}: task {task} succeeded {n} times");
    }
    let exp = finished(expected);
    let members = |v: &Value| -> BTreeMap<String, Value> {
        v["results"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| *k != "end")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        members(end),
        members(exp),
        "{what}: results differ from a local run"
    );
    assert_eq!(
        counts.len(),
        exp["results"].as_object().map(|o| o.len()).unwrap_or(0)
    );
}

/// Executions recorded by the members (the `end` task's result).
fn executions(events: &[Value]) -> u64 {
    finished(events)["results"]["end"].as_u64().unwrap_or(0)
}

/// Wait until worker `i` holds running attempts (its record says busy).
fn wait_busy(fleet: &Fleet, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let busy: Vec<Value> = fleet
            .redis
            .cli(&["KEYS", "graflow:worker:*"])
            .lines()
            .filter_map(|k| serde_json::from_str::<Value>(&fleet.redis.cli(&["GET", k])).ok())
            .filter(|r| r["busy"].as_u64().unwrap_or(0) > 0)
            .collect();
        if !busy.is_empty() {
            return busy;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no worker became busy:\n{}", fleet.logs());
}

/// The index of the worker process with this pid.
fn worker_with_pid(fleet: &Fleet, pid: u64) -> usize {
    fleet
        .workers
        .iter()
        .position(|w| u64::from(w.child.id()) == pid)
        .unwrap_or_else(|| panic!("no worker has pid {pid}"))
}

#[test]
fn a_worker_killed_in_the_middle_of_tasks_loses_nothing() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(2);
    let file = fleet.write("mid.ron", &group_workflow(6, &shell_member(1.5)));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let run = fleet.spawn_run(&file, &[]);
    let busy = wait_busy(&fleet, Duration::from_secs(20));
    let victim = worker_with_pid(&fleet, busy[0]["pid"].as_u64().unwrap_or(0));
    let held = busy[0]["busy"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200));
    let killed_at = Instant::now();
    fleet.kill9(victim);
    let (code, events, err) = collect(run, Duration::from_secs(90));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "kill -9 mid-task");
    assert!(
        executions(&events) >= 6 + held,
        "the killed worker's {held} tasks ran again ({} executions)",
        executions(&events)
    );
    // Recovery: lease (2 s) + reaper period + the tasks' own 1.5 s + slack.
    assert!(killed_at.elapsed() < Duration::from_secs(30));
}

/// Start a fleet whose only worker (one slot) aborts at `point` of task `t0`; once it died,
/// a healthy worker finishes the run. Returns the events and the local run's.
fn failpoint_run(point: &str) -> (Fleet, Vec<Value>, Vec<Value>) {
    let mut fleet = Fleet::start(0);
    let file = fleet.write("fp.ron", &group_workflow(4, SCRIPT_MEMBER));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let spec = format!("{point}:abort:t0");
    fleet.spawn_worker(
        &["--lease", "2s", "--concurrency", "1"],
        &[("GRAFLOW_FAILPOINT", spec.as_str())],
    );
    let run = fleet.spawn_run(&file, &[]);
    let code = fleet.wait_exit(0, Duration::from_secs(30));
    assert!(
        code.is_none() || code != Some(0),
        "the worker aborted at {point}"
    );
    let log = std::fs::read_to_string(&fleet.workers[0].log).unwrap_or_default();
    assert!(log.contains(&format!("failpoint {point} hit")), "{log}");
    fleet.spawn_worker(&["--lease", "2s"], &[]);
    let (code, events, err) = collect(run, Duration::from_secs(90));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    (fleet, events, expected)
}

#[test]
fn a_worker_killed_after_reading_before_starting_loses_nothing() {
    needs!(Service::Redis);
    let (fleet, events, expected) = failpoint_run("after_fetch");
    assert_once(&events, &expected, &fleet, "after_fetch");
    assert_eq!(executions(&events), 4, "each member ran once");
}

#[test]
fn a_worker_killed_after_the_body_before_the_commit_runs_it_again_commits_once() {
    needs!(Service::Redis);
    let (fleet, events, expected) = failpoint_run("after_body");
    assert_once(&events, &expected, &fleet, "after_body");
    assert!(
        executions(&events) >= 5,
        "the body ran again: {}",
        executions(&events)
    );
}

#[test]
fn a_member_committed_before_its_worker_died_is_not_run_again_and_the_group_fires_once() {
    needs!(Service::Redis);
    let (fleet, events, expected) = failpoint_run("after_commit");
    assert_once(&events, &expected, &fleet, "after_commit");
    assert_eq!(executions(&events), 4, "a committed member ran again");
    let groups = events
        .iter()
        .filter(|e| e["event"] == "group_finished")
        .count();
    assert_eq!(groups, 1);
    let group = events
        .iter()
        .find(|e| e["event"] == "group_finished")
        .unwrap_or(&Value::Null);
    assert_eq!(group["succeeded"].as_array().map(Vec::len), Some(4));
}

#[test]
fn a_worker_frozen_past_its_lease_cannot_commit_late() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(0);
    fleet.spawn_worker(&["--lease", "2s"], &[]);
    fleet.wait_for_workers(1);
    // Members long enough (3 s) for the once-a-second worker record to show them running.
    let file = fleet.write("stop.ron", &group_workflow(3, &shell_member(3.0)));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let run = fleet.spawn_run(&file, &[]);
    wait_busy(&fleet, Duration::from_secs(20));
    fleet.pause(0);
    fleet.spawn_worker(&["--lease", "2s"], &[]);
    let (code, events, err) = collect(run, Duration::from_secs(60));
    fleet.resume(0);
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "SIGSTOP past the lease");
    // The frozen worker, woken, finds its leases gone and commits nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    while Instant::now() < deadline {
        log = std::fs::read_to_string(&fleet.workers[0].log).unwrap_or_default();
        if log.contains("lost the lease") || log.contains("was refused") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        log.contains("lost the lease") || log.contains("was refused"),
        "the woken worker did not notice it lost its attempts:\n{log}"
    );
}

#[test]
fn sigterm_drains_finishing_work_or_hands_it_back_at_once() {
    needs!(Service::Redis);
    // Within the grace period the attempts finish on the draining worker.
    let mut fleet = Fleet::start(0);
    fleet.spawn_worker(&["--lease", "30s", "--grace", "20s"], &[]);
    fleet.wait_for_workers(1);
    let file = fleet.write("drain.ron", &group_workflow(3, &shell_member(1.0)));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let run = fleet.spawn_run(&file, &[]);
    wait_busy(&fleet, Duration::from_secs(20));
    fleet.term(0);
    assert_eq!(fleet.wait_exit(0, Duration::from_secs(30)), Some(0));
    fleet.spawn_worker(&["--lease", "30s"], &[]);
    let (code, events, err) = collect(run, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "drain within grace");
    assert_eq!(executions(&events), 3, "nothing ran twice");

    // Past the grace period they go back to the queue and run elsewhere at once, not after
    // the 30 s lease.
    let mut fleet = Fleet::start(0);
    fleet.spawn_worker(&["--lease", "30s", "--grace", "300ms"], &[]);
    fleet.wait_for_workers(1);
    let file = fleet.write("drain.ron", &group_workflow(3, &shell_member(3.0)));
    let run = fleet.spawn_run(&file, &[]);
    wait_busy(&fleet, Duration::from_secs(20));
    fleet.spawn_worker(&["--lease", "30s"], &[]);
    let termed = Instant::now();
    fleet.term(0);
    assert_eq!(fleet.wait_exit(0, Duration::from_secs(30)), Some(0));
    let (code, events, err) = collect(run, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "drain past grace");
    assert!(
        termed.elapsed() < Duration::from_secs(20),
        "handed back attempts waited for the lease: {:?}",
        termed.elapsed()
    );
    let log = std::fs::read_to_string(&fleet.workers[0].log).unwrap_or_default();
    assert!(log.contains("went back to their queue"), "{log}");
}

#[test]
fn a_held_dead_letter_requeued_by_an_operator_runs_again_and_its_run_succeeds() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(0);
    let (child, mended) = fleet.held_dead_letter();
    let dlq = "graflow:{q:default}:dlq";
    // What an operator sees, and the requeue they ask for, once the cause is mended.
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let keys = graflow_engine::distributed::keys::Keys::new("graflow");
    let link = rt
        .block_on(graflow_engine::distributed::conn::Link::connect(
            &fleet.url,
            Duration::from_secs(5),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = rt
        .block_on(graflow_engine::distributed::watch::fleet_snapshot(
            &link,
            &keys,
            Duration::from_secs(60),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let queue = snapshot
        .queues
        .iter()
        .find(|q| q.name == "default")
        .unwrap_or_else(|| panic!("no default queue: {snapshot:?}"));
    let letter = queue
        .dead_letters
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{queue:?}"));
    assert_eq!(letter.attempt, "poison:1:0");
    assert!(letter.held_until_ms.is_some(), "{letter:?}");
    std::fs::write(&mended, "").unwrap_or_else(|e| panic!("{e}"));
    let requeue = || {
        rt.block_on(graflow_engine::distributed::watch::requeue_dead_letter(
            &link, &keys, "default", &letter, "the test",
        ))
    };
    requeue().unwrap_or_else(|e| panic!("{e}"));
    // Twice is refused, saying why.
    let again = requeue();
    assert!(
        again
            .as_ref()
            .is_err_and(|e| matches!(e, graflow_engine::FleetError::Refused(m) if m.contains("requeued already"))),
        "{again:?}"
    );
    assert_eq!(
        fleet.redis.cli(&["XLEN", dlq]).trim(),
        "0",
        "the dead letter is gone"
    );
    if let Ok(Some(_)) = fleet.workers[0].child.try_wait() {
        fleet.respawn(0);
    }
    let (code, events, err) = collect(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_eq!(finished(&events)["status"], "succeeded");
    let logs: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "task_log" && e["task"] == "poison")
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert!(
        logs.iter().any(|l| l.contains("held 2m")),
        "the run says the letter is held: {logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("requeued by the test")),
        "{logs:?}"
    );
    assert!(logs.contains(&"mended"), "{logs:?}");
    assert_eq!(successes(&events).get("after"), Some(&1));
}

#[test]
fn a_dead_letter_past_its_hold_fails_its_attempt() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(0);
    fleet.spawn_worker(&["--lease", "1s", "--max-deliveries", "1"], &[]);
    fleet.wait_for_workers(1);
    let file = fleet.write(
        "short.ron",
        r#"Workflow(
    name: "short",
    flow: "poison",
    tasks: {"poison": Task(run: Shell("kill -9 $PPID; sleep 5"), queue: "default")},
)"#,
    );
    let mut child = fleet.spawn_run_env(&file, &[], &[("GRAFLOW_DEAD_LETTER_HOLD", "2s")]);
    fleet.supervise(&mut child, |_| false);
    let (code, events, err) = collect(child, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{err}\n{}", fleet.logs());
    assert_dead_lettered(&events);
}

/// Task `poison` failed, dead-lettered.
fn assert_dead_lettered(events: &[Value]) {
    let failed = events
        .iter()
        .find(|e| e["event"] == "task_failed" && e["task"] == "poison")
        .unwrap_or_else(|| panic!("no failure of the poison task: {events:?}"));
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or("")
            .contains("dead-lettered"),
        "{failed}"
    );
}

#[test]
fn a_poison_task_is_dead_lettered_after_the_delivery_cap() {
    needs!(Service::Redis);
    let mut fleet = Fleet::start(0);
    let args = ["--lease", "1s", "--max-deliveries", "3"];
    fleet.spawn_worker(&args, &[]);
    fleet.wait_for_workers(1);
    let file = fleet.write(
        "poison.ron",
        r#"Workflow(
    name: "poison",
    flow: "start >> (poison | fine)",
    tasks: {
        "start": Task(run: Value(1)),
        "poison": Task(run: Shell("kill -9 $PPID; sleep 5")),
        "fine": Task(run: Value("fine")),
    },
)"#,
    );
    let run = fleet.spawn_run(&file, &[]);
    // A supervisor: restart the worker each time the poison kills it, a bounded number of
    // times.
    let mut restarts = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut run = Some(run);
    let mut done = None;
    while Instant::now() < deadline {
        if let Some(child) = run.as_mut()
            && let Ok(Some(_)) = child.try_wait()
        {
            done = run.take();
            break;
        }
        if let Ok(Some(_)) = fleet.workers[0].child.try_wait() {
            restarts += 1;
            assert!(restarts <= 6, "the poison task was delivered without a cap");
            fleet.respawn(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, events, err) = collect(
        done.or(run).unwrap_or_else(|| panic!("no run")),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{err}\n{}", fleet.logs());
    assert_eq!(restarts, 3, "one restart per delivery up to the cap");
    assert_dead_lettered(&events);
    let dlq = fleet
        .redis
        .cli(&["XRANGE", "graflow:{q:default}:dlq", "-", "+"]);
    assert!(dlq.contains("poison:1:0"), "{dlq}");
    assert_eq!(successes(&events).get("fine"), Some(&1));
}

fn restart_redis_mid_run(fsync: &str) -> (u64, u64) {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", fsync]);
    let mut fleet = Fleet::with_redis(redis, 2, &["--lease", "2s"]);
    // Members that take a moment, so Redis goes away while many are queued or running; each
    // execution also leaves a line in a file (the channel itself may roll back with Redis).
    let n = 200;
    let member = r#"Shell("echo t{i} >> execs.log && graflow ctx append exec t{i} >/dev/null && sleep 0.2 && echo '\"r{i}\"' > \"$GRAFLOW_RESULT_FILE\"")"#;
    let file = fleet.write("many.ron", &group_workflow(n, member));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let run = fleet.spawn_run(&file, &[]);
    wait_busy(&fleet, Duration::from_secs(20));
    fleet.redis.kill();
    std::thread::sleep(Duration::from_millis(800));
    fleet.redis.restart();
    let (code, events, err) = collect(run, Duration::from_secs(120));
    assert_eq!(code, Some(0), "{fsync}: {err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, fsync);
    // People are told, once, that Redis went away and came back.
    let logs = fleet.logs();
    assert!(
        logs.contains("is unreachable") && logs.contains("is back after"),
        "{logs}"
    );
    let ran = std::fs::read_to_string(fleet.dir.path().join("execs.log")).unwrap_or_default();
    // The local run wrote one line per member too.
    ((ran.lines().count() - n) as u64, n as u64)
}

#[test]
fn redis_killed_and_restarted_mid_run_loses_nothing_with_fsync_always() {
    needs!(Service::Redis);
    let (executions, tasks) = restart_redis_mid_run("always");
    assert!(executions >= tasks);
}

#[test]
fn redis_killed_and_restarted_mid_run_loses_nothing_with_fsync_everysec() {
    needs!(Service::Redis);
    // Up to a second of writes can be lost: those attempts run again, each still commits once.
    let (executions, tasks) = restart_redis_mid_run("everysec");
    assert!(executions >= tasks);
    eprintln!("everysec: {tasks} tasks, {executions} executions (re-run after the loss)");
}

fn redis_addr(server: &RedisServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.port()))
}

#[test]
fn a_short_network_cut_costs_nothing_and_a_long_one_moves_the_work() {
    needs!(Service::Redis);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    // Short: the worker keeps its attempts (no redelivery).
    let mut fleet = Fleet::start(0);
    let proxy = rt.block_on(Proxy::start(redis_addr(&fleet.redis)));
    let direct = std::mem::replace(&mut fleet.url, proxy.url());
    fleet.spawn_worker(&["--lease", "3s"], &[]);
    fleet.wait_for_workers(1);
    fleet.url = direct;
    let file = fleet.write("cut.ron", &group_workflow(3, &shell_member(2.0)));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let run = fleet.spawn_run(&file, &[]);
    wait_busy(&fleet, Duration::from_secs(20));
    proxy.cut();
    std::thread::sleep(Duration::from_millis(600));
    proxy.heal();
    let (code, events, err) = collect(run, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "short cut");
    assert_eq!(executions(&events), 3, "a short cut caused redeliveries");

    // Long: another worker takes the attempts over; the cut-off one stops them.
    let mut fleet = Fleet::start(0);
    let proxy = rt.block_on(Proxy::start(redis_addr(&fleet.redis)));
    let direct = std::mem::replace(&mut fleet.url, proxy.url());
    fleet.spawn_worker(&["--lease", "2s"], &[]);
    fleet.wait_for_workers(1);
    fleet.url = direct;
    let file = fleet.write("cut.ron", &group_workflow(3, &shell_member(3.0)));
    let run = fleet.spawn_run(&file, &[]);
    wait_busy(&fleet, Duration::from_secs(20));
    proxy.cut();
    fleet.spawn_worker(&["--lease", "2s"], &[]);
    let (code, events, err) = collect(run, Duration::from_secs(60));
    proxy.heal();
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "long cut");
    assert!(executions(&events) >= 6, "the attempts ran again elsewhere");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    let noticed = |log: &str| log.contains("lost the lease") || log.contains("was refused");
    while Instant::now() < deadline {
        log = std::fs::read_to_string(&fleet.workers[0].log).unwrap_or_default();
        if noticed(&log) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        noticed(&log),
        "the cut-off worker did not stop or was not refused:\n{log}"
    );
}

#[test]
fn a_killed_coordinator_is_resumed_and_reuses_committed_results() {
    needs!(Service::Redis);
    let fleet = Fleet::start(2);
    let member = r#"Shell("graflow ctx append exec t{i} >/dev/null && echo t{i} >> execs.log && sleep 1.5 && echo '\"r{i}\"' > \"$GRAFLOW_RESULT_FILE\"")"#;
    let file = fleet.write("coord.ron", &group_workflow(4, member));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let mut run = fleet.spawn_run(&file, &["--checkpoint-every-task"]);
    wait_busy(&fleet, Duration::from_secs(20));
    let _ = run.kill();
    let _ = run.wait();
    let ckpts: Vec<_> = std::fs::read_dir(fleet.dir.path().join("state/checkpoints"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
                .collect()
        })
        .unwrap_or_default();
    let last = ckpts
        .iter()
        .max()
        .unwrap_or_else(|| panic!("no checkpoint was written"))
        .to_string_lossy()
        .to_string();
    let (code, events, err) = fleet_support::run_bounded(fleet.command(&[
        "resume",
        &last,
        "--json",
        "--backend",
        &fleet.url,
    ]));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    let end = finished(&events);
    let exp = finished(&expected);
    for (task, value) in exp["results"].as_object().into_iter().flatten() {
        if task != "end" {
            assert_eq!(&end["results"][task], value, "{task}");
        }
    }
    // The members were running when the coordinator died: they committed, and the resumed
    // run took their outcomes instead of running them again (the local run ran each once;
    // here the file the bodies write to has one line per member) — and replayed their
    // channel writes onto the channel restored from the checkpoint.
    let ran = std::fs::read_to_string(fleet.dir.path().join("execs.log")).unwrap_or_default();
    let local_runs = 4;
    assert_eq!(
        ran.lines().count(),
        4 + local_runs,
        "members ran again:\n{ran}"
    );
    assert_eq!(end["results"]["end"].as_u64(), Some(4), "{end}");
}

/// A seeded soak: workers killed at random and Redis restarted once while a big group runs.
/// `GRAFLOW_SOAK_TASKS` sets its size (2,000 by default; 10,000 for the long soak).
#[test]
fn a_seeded_chaos_soak_commits_every_task_once() {
    needs!(Service::Redis);
    let n: usize = std::env::var("GRAFLOW_SOAK_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut fleet = Fleet::start(4);
    let file = fleet.write("soak.ron", &group_workflow(n, SCRIPT_MEMBER));
    let (_, expected, _) = fleet.run_local(&file, &[]);
    let mut run = fleet.spawn_run(&file, &[]);
    let mut seed: u64 = 0x5eed_1234;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let started = Instant::now();
    let mut restarted_redis = false;
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(Some(_)) = run.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200 + next() % 600));
        let victim = (next() % 4) as usize;
        fleet.kill9(victim);
        kills += 1;
        if !restarted_redis && started.elapsed() > Duration::from_secs(2) {
            fleet.redis.kill();
            std::thread::sleep(Duration::from_millis(300));
            fleet.redis.restart();
            restarted_redis = true;
        }
        fleet.respawn(victim);
    }
    let (code, events, err) = collect(run, Duration::from_secs(120));
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert_once(&events, &expected, &fleet, "chaos soak");
    eprintln!(
        "soak: {n} tasks, {} executions, {kills} worker kills, redis restarted: {restarted_redis}",
        executions(&events)
    );
    // Quiescence: duplicate entries are consumed and nothing stays queued or pending.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let len = fleet.redis.cli(&["XLEN", "graflow:{q:default}:s"]);
        let pending = fleet
            .redis
            .cli(&["XPENDING", "graflow:{q:default}:s", "workers"]);
        let idle = len.trim() == "0" && pending.lines().next().map(str::trim) == Some("0");
        if idle {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue not empty: {len} / {pending}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
