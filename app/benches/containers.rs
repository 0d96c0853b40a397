//! Benchmarks of the deploy stack in containers (`assets/deploy/`): the images built from
//! this build's `graflow` (the bench profile, optimised) and Debian's `redis-server`, then the
//! compose stack with 2 and with 4 worker containers. One JSON line per workload (`workload`,
//! `n`, `seconds`, `per_item_us`, plus its own figures):
//!
//! - `image_build`: `assets/deploy/build-images.sh --no-cargo` (the cargo build aside): each
//!   image's size and build time.
//! - `containers_group_noop_1000_wN`: a 1,000-member group of `Noop` tasks run by `graflow
//!   run` in a container of the stack, N = 2 and 4 workers (median of 5 runs, from the run's
//!   first event to its last; `tasks_per_s`, `scaling` for 4 workers against 2, and
//!   `with_container_start_s`, the time including `compose run`'s container start).
//!   CPU-bound: on a 2-core machine more workers cannot go faster.
//! - `containers_group_sleep_1000_wN`: the same with `Sleep("20ms")` tasks (work that waits):
//!   twice the slots, about twice the throughput.
//!
//! - `worker_container_idle_memory`: an idle worker container's memory as `docker stats`
//!   reports it (`mib`).
//! - `redis_memory_per_queued_task`: a 10,000-member group run with no worker, so every
//!   attempt waits in the queue: Redis's `used_memory` growth divided by the attempts queued
//!   (`bytes_per_task`, per attempt).
//!
//! `cargo bench -p graflow --bench containers` (needs a Docker engine, Debian's
//! `redis-server` and `busybox-static`).

#[path = "../tests/integration/deploy_support/mod.rs"]
mod deploy_support;

use std::process::Command;
use std::time::{Duration, Instant};

use deploy_support::{Options, Stack};

fn group(name: &str, n: usize, run: &str) -> String {
    let members: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let tasks: String = (0..n)
        .map(|i| format!("\"t{i}\": Task(run: {run}),\n"))
        .collect();
    format!(
        "Workflow(name: \"{name}\", flow: \"start >> g >> end\", max_steps: {}, \
         groups: {{\"g\": Group(members: \"{}\")}}, tasks: {{\"start\": Task(run: Noop), \
         \"end\": Task(run: Noop),\n{tasks}}})",
        n + 10,
        members.join(" | ")
    )
}

/// Seconds since midnight of an RFC 3339 time (`…T13:05:22.013111Z`).
fn clock(ts: &str) -> f64 {
    let t = ts.split('T').nth(1).unwrap_or("").trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let m: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let s: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    h * 3600.0 + m * 60.0 + s
}

/// From `run_started` to `run_finished`, by the coordinator's clock.
fn run_seconds(events: &[serde_json::Value]) -> f64 {
    let at = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .and_then(|e| e["ts"].as_str())
            .map(clock)
            .expect("the run's first and last events")
    };
    let d = at("run_finished") - at("run_started");
    if d < 0.0 { d + 86_400.0 } else { d }
}

fn line(workload: &str, n: usize, seconds: f64, extra: &str) {
    println!(
        "{{\"workload\":\"{workload}\",\"n\":{n},\"seconds\":{seconds:.6},\"per_item_us\":{:.3}{extra}}}",
        seconds * 1e6 / n as f64
    );
}

/// `12.5MiB`, `900KiB`, `1.1GiB` in MiB.
fn mem_mib(text: &str) -> f64 {
    let t = text.trim();
    let (num, factor) = if let Some(v) = t.strip_suffix("GiB") {
        (v, 1024.0)
    } else if let Some(v) = t.strip_suffix("MiB") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix("KiB") {
        (v, 1.0 / 1024.0)
    } else {
        (t.trim_end_matches('B'), 1.0 / (1024.0 * 1024.0))
    };
    num.trim().parse::<f64>().unwrap_or(0.0) * factor
}

/// Redis's `used_memory`, in bytes.
fn used_memory(stack: &Stack) -> u64 {
    stack
        .redis_cli(&["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO memory")
}

fn redis_memory_per_queued_task() {
    let n = 10_000;
    let stack = Stack::up(
        Options {
            workers: 0,
            ..Options::default()
        },
        &[("queued.ron", group("queued", n, "Noop"))],
    );
    let before = used_memory(&stack);
    let run = stack.spawn_run("queued.ron", &[]);
    // Wait until the queue stops growing (every member queued), at most two minutes.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = 0u64;
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let len: u64 = stack
            .redis_cli(&["XLEN", "graflow:{q:default}:s"])
            .trim()
            .parse()
            .unwrap_or(0);
        if len != last {
            last = len;
            stable_since = Instant::now();
        } else if len > 0 && stable_since.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let after = used_memory(&stack);
    drop(run);
    // Every member queued once (the coordinator may add a second entry for an attempt it
    // checks again; those are counted in `stream_entries`, the cost is per attempt).
    assert!(last >= n as u64, "only {last} of {n} attempts were queued");
    let per = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "{{\"workload\":\"redis_memory_per_queued_task\",\"n\":{n},\"stream_entries\":{last},\"seconds\":0,\"per_item_us\":0,\"bytes_per_task\":{per:.0},\"used_memory_before\":{before},\"used_memory_after\":{after}}}"
    );
}

fn main() {
    if Command::new("docker")
        .arg("info")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("containers bench: no Docker engine answers; nothing measured");
        return;
    }
    // The images, from this build's binary.
    // SAFETY: set before any thread of this process reads the environment.
    unsafe { std::env::set_var("GRAFLOW_IMAGE_TAG", "bench") };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/deploy/build-images.sh"
    );
    let out = Command::new(script)
        .args([
            "--tag",
            "bench",
            "--no-cache",
            "--binary",
            env!("CARGO_BIN_EXE_graflow"),
        ])
        .output()
        .expect("build-images.sh runs");
    assert!(
        out.status.success(),
        "build-images.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if l.starts_with('{') && l.contains("\"image\"") {
            println!("{l}");
        }
    }

    redis_memory_per_queued_task();

    let n = 1000;
    let files = [
        ("noop", "noop.ron".to_string(), group("noop", n, "Noop")),
        (
            "sleep",
            "sleep.ron".to_string(),
            group("sleep", n, "Sleep(\"20ms\")"),
        ),
    ];
    let extra: Vec<(&str, String)> = files
        .iter()
        .map(|(_, f, t)| (f.as_str(), t.clone()))
        .collect();
    let mut base: Vec<(String, f64)> = Vec::new();
    for workers in [2, 4] {
        let stack = Stack::up(
            Options {
                workers,
                lease: "30s",
                grace: "30s",
                concurrency: 8,
            },
            &extra,
        );
        if workers == 2 {
            std::thread::sleep(Duration::from_secs(3));
            let id = stack.containers("worker")[0].clone();
            let usage =
                deploy_support::docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &id]);
            let mib = mem_mib(usage.split('/').next().unwrap_or(""));
            println!(
                "{{\"workload\":\"worker_container_idle_memory\",\"n\":1,\"seconds\":0,\"per_item_us\":0,\"mib\":{mib:.1}}}"
            );
        }
        for (kind, file, _) in &files {
            // One warm-up run, then five measured.
            let _ = stack.run(file);
            let mut times: Vec<(f64, Duration)> = (0..5)
                .map(|_| {
                    let t0 = Instant::now();
                    let (code, events, err) = stack.run(file);
                    assert_eq!(code, Some(0), "{err}");
                    (run_seconds(&events), t0.elapsed())
                })
                .collect();
            times.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (median, with_start) = times[times.len() / 2];
            let workload = format!("containers_group_{kind}_{n}_w{workers}");
            let scaling = base
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, m2)| format!(",\"scaling\":{:.2}", m2 / median))
                .unwrap_or_default();
            line(
                &workload,
                n,
                median,
                &format!(
                    ",\"workers\":{workers},\"tasks_per_s\":{:.0}{scaling},\"with_container_start_s\":{:.3}",
                    n as f64 / median,
                    with_start.as_secs_f64()
                ),
            );
            if workers == 2 {
                base.push((kind.to_string(), median));
            }
        }
        drop(stack);
    }
}
