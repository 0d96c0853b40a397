//! What the engine's benchmark harnesses share: timing runs and printing one JSON line per
//! workload (`workload`, `n`, `seconds` = the median, `per_item_us`, `runs`, `min_seconds`,
//! `allocator`). With the `mimalloc` feature the harnesses allocate with mimalloc, as the
//! `graflow` binary does; otherwise with the system allocator.
#![allow(dead_code)] // each harness uses part of it

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator the harness runs on, for its lines.
pub const ALLOCATOR_NAME: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::prelude::*;
use serde_json::{Value, json};

/// The median of `samples`, in seconds.
pub fn median(samples: &[Duration]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(sorted.len() / 2)
        .map(Duration::as_secs_f64)
        .unwrap_or(0.0)
}

/// Print the line of `workload` over `n` items; returns the median in seconds.
pub fn report(workload: &str, n: usize, samples: &[Duration]) -> f64 {
    report_with(workload, n, samples, json!({}))
}

/// [`report`] with extra fields (an object) in the line.
pub fn report_with(workload: &str, n: usize, samples: &[Duration], extra: Value) -> f64 {
    let seconds = median(samples);
    let min = samples.iter().min().copied().unwrap_or_default();
    let mut line = json!({
        "workload": workload,
        "n": n,
        "seconds": seconds,
        "per_item_us": seconds * 1e6 / n as f64,
    });
    if let (Some(line), Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
        line.insert("runs".into(), json!(samples.len()));
        line.insert("min_seconds".into(), json!(min.as_secs_f64()));
        line.insert("allocator".into(), json!(ALLOCATOR_NAME));
    }
    println!("{line}");
    seconds
}

/// Run `wf` `runs` times after one untimed warm-up run; each run must succeed.
pub fn time_runs(rt: &tokio::runtime::Runtime, wf: &Arc<Workflow>, runs: usize) -> Vec<Duration> {
    let engine = Engine::new();
    (0..=runs)
        .map(|_| {
            let t0 = Instant::now();
            let out = rt.block_on(engine.run(wf.clone(), RunOptions::new()));
            let elapsed = t0.elapsed();
            assert!(out.succeeded(), "{:?}", out.error);
            elapsed
        })
        .skip(1)
        .collect()
}

/// This process's resident memory and its peak, in bytes (Linux).
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reset the peak resident memory to the current one (Linux).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
