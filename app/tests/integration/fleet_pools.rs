//! Pools and rate limits across a real fleet: a `redis-server` of the test's own, two `graflow
//! worker` processes and `graflow run --backend`. The same file as locally: 200 tasks on a
//! 4-slot pool never run more than 4 at once (the tasks count themselves in the channel), a
//! 5/s pool spaces 50 tasks over about 9.8 s (Redis time, shared by both workers), and a
//! worker killed (-9) while holding slots gives them back when its lease runs out.

use crate::services::Service;

use crate::fleet_support;

use std::time::{Duration, Instant};

use fleet_support::{Fleet, RedisServer, finished};
use serde_json::Value;

/// `start >> g`, where group `g` has `n` members running `body` in pool `pool`.
fn pooled(n: usize, pools: &str, body: &str) -> String {
    let members: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let tasks: Vec<String> = (0..n)
        .map(|i| format!("\"t{i}\": Task(run: {body}, pool: \"api\"),"))
        .collect();
    format!(
        r##"Workflow(
    name: "pooled",
    flow: "start >> g",
    pools: {{{pools}}},
    groups: {{"g": Group(members: "{}")}},
    tasks: {{
        "start": Task(run: Value("go")),
        {}
    }},
)"##,
        members.join(" | "),
        tasks.join("\n        ")
    )
}

/// The most entries of `log` open at once (+1 opens, -1 closes).
fn max_open(log: &Value) -> i64 {
    let (mut open, mut max) = (0, 0);
    for v in log.as_array().unwrap_or_else(|| panic!("no log: {log}")) {
        open += v.as_i64().unwrap_or(0);
        max = max.max(open);
    }
    assert_eq!(open, 0, "every task closed what it opened");
    max
}

fn two_workers() -> Fleet {
    Fleet::with_redis(
        RedisServer::start_with(&[]),
        2,
        &["--lease", "2s", "--concurrency", "8"],
    )
}

fn event_time(e: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339_weak(e["ts"].as_str().unwrap_or_default())
        .unwrap_or_else(|err| panic!("{e}: {err}"))
}

#[test]
fn two_hundred_tasks_on_a_four_slot_pool_with_two_workers_never_run_more_than_four_at_once() {
    needs!(Service::Redis);
    let fleet = two_workers();
    let body = r##"Script(r#" ctx.append("log", 1); ctx.set("last", ctx.task_id); ctx.append("log", -1); 1 "#)"##;
    let file = fleet.write("pool.ron", &pooled(200, r#""api": Pool(slots: 4)"#, body));
    let (code, events, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    let end = finished(&events);
    let max = max_open(&end["channel"]["log"]);
    assert!(max <= 4, "{max} tasks ran at once on a 4-slot pool");
    eprintln!("at most {max} of 200 tasks ran at once on the 4-slot pool");
    let waits: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "task_waiting")
        .collect();
    assert!(
        !waits.is_empty(),
        "with 16 worker slots, tasks waited for the pool's 4"
    );
    assert_eq!(waits[0]["reason"], "pool_slots", "{}", waits[0]);
    assert_eq!(waits[0]["pool"], "api");
    // The slots all came back.
    let holders = fleet.redis.cli(&["ZCARD", "graflow:{p:api}:slots"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut holders = holders.trim().to_string();
    while holders != "0" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        holders = fleet
            .redis
            .cli(&["ZCARD", "graflow:{p:api}:slots"])
            .trim()
            .to_string();
    }
    assert_eq!(holders, "0", "no slot is left held after the run");
    let used = fleet.redis.cli(&["GET", "graflow:{p:api}:used"]);
    assert_eq!(used.trim(), "0", "the count of slots held is back to 0");
    // Each member's task_started came after its waits (the worker reports the start).
    for w in &waits {
        let task = &w["task"];
        let waited_at = events.iter().position(|e| std::ptr::eq(e, *w));
        let started_at = events
            .iter()
            .position(|e| e["event"] == "task_started" && e["task"] == *task);
        assert!(
            started_at > waited_at,
            "{task}: task_started before task_waiting"
        );
    }
}

#[test]
fn fifty_tasks_at_five_per_second_through_redis_take_about_ten_seconds() {
    needs!(Service::Redis);
    let fleet = two_workers();
    let file = fleet.write(
        "rate.ron",
        &pooled(
            50,
            r#""api": Pool(slots: 100, rate_limit: "5/s")"#,
            "Value(1)",
        ),
    );
    let (code, events, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    let at = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .map(event_time)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let took = at("group_finished")
        .duration_since(at("group_started"))
        .unwrap_or_default();
    eprintln!("50 tasks at 5/s through Redis with two workers: {took:?}");
    // 49 intervals of 200 ms, within 10 %.
    assert!(
        took >= Duration::from_millis(8820) && took <= Duration::from_millis(10780),
        "50 starts at 5/s took {took:?}"
    );
    let workers: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| e["event"] == "task_succeeded" && e["task"] != "start")
        .filter_map(|e| e["worker"].as_str())
        .collect();
    assert_eq!(workers.len(), 2, "both workers took from the one bucket");
    assert!(events.iter().any(|e| {
        e["event"] == "task_waiting"
            && e["reason"] == "rate_limit"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("pool 'api' (5/s)"))
    }));
}

/// Slot holders of pool `api` (members `<slots>|<holder>`).
fn holders(fleet: &Fleet) -> Vec<String> {
    fleet
        .redis
        .cli(&["ZRANGE", "graflow:{p:api}:slots", "0", "-1"])
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_worker_killed_while_holding_slots_gives_them_back_after_its_lease() {
    needs!(Service::Redis);
    let mut fleet = Fleet::with_redis(
        RedisServer::start_with(&[]),
        1,
        &["--lease", "2s", "--concurrency", "4"],
    );
    let body = r#"Shell("sleep 2")"#;
    let file = fleet.write("kill.ron", &pooled(2, r#""api": Pool(slots: 2)"#, body));
    let run = fleet.spawn_run(&file, &[]);
    // Wait until the only worker holds both slots.
    let deadline = Instant::now() + Duration::from_secs(30);
    while holders(&fleet).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the worker never held both slots:\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dead = holders(&fleet);
    fleet.kill9(0);
    // Nobody gave them back: the dead worker's leases (2 s) still hold them.
    assert_eq!(
        holders(&fleet),
        dead,
        "the slots stay held until the leases run out"
    );
    // A new worker: it reclaims the attempts once their lease runs out and takes the slots the
    // dead worker's leases held.
    fleet.spawn_worker(&["--lease", "2s", "--concurrency", "4"], &[]);
    let out = fleet.succeeded(run, Duration::from_secs(90));
    let events = fleet_support::json_lines(&out.stdout);
    assert_eq!(finished(&events)["status"], "succeeded");
    let now = holders(&fleet);
    assert!(
        now.iter().all(|h| !dead.contains(h)),
        "the dead worker's holds are gone: {now:?} (dead: {dead:?})"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holders(&fleet).is_empty() {
        assert!(
            Instant::now() < deadline,
            "slots left held: {:?}",
            holders(&fleet)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server on 127.0.0.1 answering its first request 429 with `Retry-After: 1`, the others
/// 200; it records when each request arrived.
fn busy_once_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/v1",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Instant>>> = Default::default();
    let arrivals = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut sock) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let n = {
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                s.push(Instant::now());
                s.len()
            };
            let reply = if n == 1 {
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            };
            let _ = sock.write_all(reply.as_bytes());
        }
    });
    (url, arrivals)
}

#[test]
fn a_429_on_a_worker_delays_the_retry_by_its_retry_after() {
    needs!(Service::Redis);
    let fleet = two_workers();
    let (url, arrivals) = busy_once_server();
    let file = fleet.write(
        "api.ron",
        &format!(
            r#"Workflow(
    name: "api",
    flow: "call",
    pools: {{"api": Pool(slots: 2)}},
    tasks: {{
        "call": Task(run: Http(url: "{url}"), pool: "api", queue: "default", retries: (max: 2, backoff: "10ms")),
    }},
)"#
        ),
    );
    let (code, events, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "task_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(
        failed[0]["worker"].is_string(),
        "a worker ran it: {}",
        failed[0]
    );
    let at = arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(at.len(), 2);
    let gap = at[1] - at[0];
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(5),
        "the retry came {gap:?} after the 429"
    );
}

/// On a worker too, waiting for a slot is not timed: four tasks of 0.6 s with a 1 s timeout
/// take turns on a 1-slot pool (the last waits about 1.8 s) and all succeed.
#[test]
fn waiting_on_a_worker_does_not_count_against_the_timeout() {
    needs!(Service::Redis);
    let fleet = two_workers();
    let members: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
    let tasks: Vec<String> = members
        .iter()
        .map(|m| {
            format!("\"{m}\": Task(run: Shell(\"sleep 0.6\"), pool: \"one\", timeout: \"1s\"),")
        })
        .collect();
    let file = fleet.write(
        "timeouts.ron",
        &format!(
            r#"Workflow(
    name: "timeouts",
    flow: "start >> g",
    pools: {{"one": Pool(slots: 1)}},
    groups: {{"g": Group(members: "{}")}},
    tasks: {{
        "start": Task(run: Value("go")),
        {}
    }},
)"#,
            members.join(" | "),
            tasks.join("\n        ")
        ),
    );
    let (code, events, err) = fleet.run(&file, &[]);
    assert_eq!(code, Some(0), "{err}\n{}", fleet.logs());
    assert!(
        events.iter().all(|e| e["event"] != "task_failed"),
        "{:?}",
        events
            .iter()
            .filter(|e| e["event"] == "task_failed")
            .collect::<Vec<_>>()
    );
    let waited = events
        .iter()
        .filter(|e| e["event"] == "task_waiting")
        .count();
    assert!(waited >= 2, "tasks took turns ({waited} waits)");
}
