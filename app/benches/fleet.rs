//! Benchmarks of the Redis fleet with real processes: a `redis-server` (AOF, `everysec`) on a
//! free loopback port and two `graflow worker`s of this build. One JSON line per workload
//! (`workload`, `n`, `seconds`, `per_item_us`, plus its own figures):
//!
//! - `fleet_group_noop_1000`: `graflow run --backend` of a 1,000-member group of `Noop` tasks,
//!   end to end (median of 5 runs; `tasks_per_s`). Target ≥ 5,000 tasks/s.
//! - `fleet_dispatch_latency`: enqueue-to-start of 300 attempts sent one at a time (a chain
//!   of tasks with a `queue`), from the attempt records' Redis clock (`p50_us`, `p99_us`).
//!   Targets p50 < 1 ms, p99 < 10 ms.
//! - `fleet_recovery_after_kill`: a worker killed (-9) while it runs a 0.5 s task; the time
//!   from the kill to the run's end, minus the task's own time (`lease_s` for comparison).
//!   Target ≤ lease + 1 s.
//! - `fleet_worker_idle_rss`: an idle worker's resident memory (`rss_mb`). Target ≤ 30 MB.
//! - `fleet_group_noop_100000`: a 100,000-member group (one run): time, and the coordinator's
//!   peak memory against a 10,000-member run's (`bytes_per_member`).
//!
//! `cargo bench -p graflow --bench fleet` (needs Debian's `redis-server`).

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_server::RedisServer;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

fn worker(url: &str, lease: &str) -> Child {
    Command::new(bin())
        .args([
            "worker",
            "--redis",
            url,
            "--lease",
            lease,
            "--concurrency",
            "32",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker starts")
}

fn wait_workers(server: &RedisServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if server
            .cli(&["ZCARD", "graflow:workers"])
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
            >= n
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("workers did not register");
}

fn group_file(dir: &Path, n: usize) -> std::path::PathBuf {
    let members: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let tasks: String = (0..n)
        .map(|i| format!("\"t{i}\": Task(run: Noop),\n"))
        .collect();
    let text = format!(
        "Workflow(name: \"g{n}\", flow: \"start >> g >> end\", groups: {{\"g\": Group(members: \"{}\")}}, tasks: {{\"start\": Task(run: Noop), \"end\": Task(run: Noop),\n{tasks}}})",
        members.join(" | ")
    );
    let path = dir.join(format!("group-{n}.ron"));
    std::fs::write(&path, text).expect("write workflow");
    path
}

/// Run `file` on the fleet; wall time and the coordinator's peak RSS (kB).
fn run(file: &Path, url: &str, dir: &Path) -> (Duration, u64) {
    let t0 = Instant::now();
    let child = Command::new(bin())
        .args(["run", &file.to_string_lossy(), "--backend", url])
        .current_dir(dir)
        .env("GRAFLOW_STATE_DIR", dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run starts");
    let pid = child.id();
    let peak = std::thread::spawn(move || {
        let mut peak = 0;
        let path = format!("/proc/{pid}/status");
        while let Ok(status) = std::fs::read_to_string(&path) {
            peak = peak.max(kb(&status, "VmHWM:"));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = child.wait_with_output().expect("run ends");
    assert!(out.status.success(), "the run failed");
    let elapsed = t0.elapsed();
    (elapsed, peak.join().unwrap_or(0))
}

fn kb(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn line(workload: &str, n: usize, seconds: f64, extra: &str) {
    println!(
        "{{\"workload\":\"{workload}\",\"n\":{n},\"seconds\":{seconds:.6},\"per_item_us\":{:.3}{extra}}}",
        seconds * 1e6 / n as f64
    );
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("graflow-fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut workers = vec![worker(&url, "30s"), worker(&url, "30s")];
    wait_workers(&server, 2);

    // Throughput of a 1,000-member group.
    let file = group_file(&dir, 1000);
    run(&file, &url, &dir); // warm-up: workers load the workflow
    let mut times: Vec<Duration> = (0..5).map(|_| run(&file, &url, &dir).0).collect();
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    line(
        "fleet_group_noop_1000",
        1000,
        median,
        &format!(
            ",\"tasks_per_s\":{:.0},\"workers\":2,\"runs\":5",
            1000.0 / median
        ),
    );

    // Dispatch-to-start latency, one attempt at a time.
    let n = 300;
    let chain: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let tasks: String = (0..n)
        .map(|i| format!("\"c{i}\": Task(run: Noop, queue: \"default\"),\n"))
        .collect();
    let path = dir.join("chain.ron");
    std::fs::write(
        &path,
        format!(
            "Workflow(name: \"chain\", flow: \"{}\", tasks: {{\n{tasks}}})",
            chain.join(" >> ")
        ),
    )
    .expect("write workflow");
    let (elapsed, _) = run(&path, &url, &dir);
    let mut waits: Vec<u64> = Vec::new();
    for key in server
        .cli(&["--scan", "--pattern", "graflow:{r:*}:a:c*"])
        .lines()
    {
        let fields = server.cli(&["HMGET", key, "enqueued_us", "started_us"]);
        let mut it = fields.lines().map(|v| v.trim().parse::<u64>().ok());
        if let (Some(Some(e)), Some(Some(s))) = (it.next(), it.next()) {
            waits.push(s.saturating_sub(e));
        }
    }
    waits.sort_unstable();
    line(
        "fleet_dispatch_latency",
        waits.len(),
        elapsed.as_secs_f64(),
        &format!(
            ",\"p50_us\":{},\"p99_us\":{},\"max_us\":{}",
            percentile(&waits, 0.5),
            percentile(&waits, 0.99),
            waits.last().copied().unwrap_or(0)
        ),
    );

    // An idle worker's memory.
    std::thread::sleep(Duration::from_millis(500));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", workers[0].id()))
        .map(|s| kb(&s, "VmRSS:"))
        .unwrap_or(0);
    line(
        "fleet_worker_idle_rss",
        1,
        0.0,
        &format!(",\"rss_mb\":{:.1}", rss as f64 / 1024.0),
    );

    // Recovery after kill -9 of a busy worker (lease 2 s).
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let _ = server.cli(&["DEL", "graflow:workers"]);
    let mut busy = worker(&url, "2s");
    wait_workers(&server, 1);
    let slow = dir.join("slow.ron");
    std::fs::write(
        &slow,
        "Workflow(name: \"slow\", flow: \"a >> (s | t)\", tasks: {\"a\": Task(run: Noop), \"s\": Task(run: Sleep(\"500ms\")), \"t\": Task(run: Noop)})",
    )
    .expect("write workflow");
    let run_child = Command::new(bin())
        .args(["run", &slow.to_string_lossy(), "--backend", &url])
        .current_dir(&dir)
        .env("GRAFLOW_STATE_DIR", dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run starts");
    std::thread::sleep(Duration::from_millis(250));
    let killed = Instant::now();
    let _ = busy.kill();
    let _ = busy.wait();
    let mut spare = worker(&url, "2s");
    let _ = run_child.wait_with_output();
    let recovery = killed.elapsed().as_secs_f64() - 0.5;
    line(
        "fleet_recovery_after_kill",
        1,
        recovery,
        ",\"lease_s\":2.0,\"target_s\":3.0",
    );
    let _ = spare.kill();
    let _ = spare.wait();

    // Coordinator memory per member: 10,000 against 100,000 members.
    let mut workers = vec![worker(&url, "30s"), worker(&url, "30s")];
    wait_workers(&server, 2);
    let small = group_file(&dir, 10_000);
    let (_, small_kb) = run(&small, &url, &dir);
    let big = group_file(&dir, 100_000);
    let (big_time, big_kb) = run(&big, &url, &dir);
    let per_member = (big_kb.saturating_sub(small_kb) as f64 * 1024.0) / 90_000.0;
    line(
        "fleet_group_noop_100000",
        100_000,
        big_time.as_secs_f64(),
        &format!(
            ",\"tasks_per_s\":{:.0},\"coordinator_peak_mb\":{:.1},\"coordinator_peak_mb_10000\":{:.1},\"bytes_per_member\":{:.0}",
            100_000.0 / big_time.as_secs_f64(),
            big_kb as f64 / 1024.0,
            small_kb as f64 / 1024.0,
            per_member
        ),
    );
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
