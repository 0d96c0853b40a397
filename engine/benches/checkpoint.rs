//! Checkpoint benchmarks, one JSON line per workload (`workload`, `n`, `seconds` = median of
//! the runs, `per_item_us`, `bytes`):
//! `checkpoint_save_10mb` / `checkpoint_resume_10mb` — a run whose channel holds 10,000
//! records of about 1 KB (targets: save ≤ 15 ms, resume ≤ 12 ms); `checkpoint_save_100mb` /
//! `checkpoint_resume_100mb` — 100,000 such records (targets: ≤ 10× the 10 MB figures, peak
//! resident memory ≤ 2× the checkpoint's size); `checkpoint_save_1mb_blob` /
//! `checkpoint_resume_1mb_blob` — one 1 MB value (targets ≤ 3 ms each).
//!
//! Save is timed inside the task that calls `checkpoint_now` (pause, snapshot, write with
//! fsync); resume from reading the file until the resumed run starts its next task.
//!
//! Payloads above 1 MiB are compressed, as by default; `GRAFLOW_BENCH_COMPRESSION=never` writes
//! them plain. Each line says `compressed` and the JSON's length (`content_bytes`), which the
//! memory ratios are taken against.
//!
//! `cargo bench -p graflow-engine --bench checkpoint`

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::checkpoint::snapshot::ChannelContent;
use graflow_engine::checkpoint::{CheckpointConfig, WorkflowSource, store};
use graflow_engine::prelude::*;
use serde_json::json;
use support::{memory, report_with, reset_peak};

const RUNS: usize = 9;

/// When the first task after the checkpoint started (set by the `done` task).
static RESUMED_AT: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// fill (writes the channel) >> save (checkpoint_now, returns its duration) >> done.
fn workflow(records: usize, record_bytes: usize) -> Arc<Workflow> {
    let mut wf = Workflow::builder("ckpt-bench");
    let fill = wf.task("fill", move |ctx: TaskContext| async move {
        let body = "x".repeat(record_bytes.saturating_sub(60));
        for i in 0..records {
            ctx.channel()
                .set(
                    &format!("record.{i:05}"),
                    json!({"id": i, "name": format!("item {i}"), "body": body}),
                )
                .await?;
        }
        anyhow::Ok(records)
    });
    let save = wf.task("save", |ctx: TaskContext| async move {
        if ctx.channel().exists("resumed").await? {
            return anyhow::Ok(json!(null));
        }
        reset_peak();
        let before = memory().0;
        let t0 = Instant::now();
        ctx.checkpoint_now(json!({"bench": true}))
            .await
            .map_err(anyhow::Error::msg)?;
        let seconds = t0.elapsed().as_secs_f64();
        anyhow::Ok(json!({"seconds": seconds, "peak_rss": memory().1, "rss_before": before}))
    });
    let done = wf.task("done", |_c: TaskContext| async {
        if let Ok(mut at) = RESUMED_AT.lock() {
            *at = Some(Instant::now());
        }
        anyhow::Ok("done")
    });
    wf.flow(fill >> save >> done);
    Arc::new(wf.build().expect("bench workflow builds"))
}

/// Resume the checkpoint at `path` in this process: the time from reading the file until the
/// next task starts, and the peak resident memory.
fn resume_here(rt: &tokio::runtime::Runtime, path: &Path) -> (Duration, u64) {
    if let Ok(mut at) = RESUMED_AT.lock() {
        *at = None;
    }
    let wf = workflow(0, 0);
    let t0 = Instant::now();
    let resumed = rt.block_on(async {
        let ckpt = store::load(path).expect("loads");
        let mut snapshot = ckpt.snapshot;
        if let ChannelContent::Values(values) = &mut snapshot.channel {
            values.insert("resumed".into(), json!(true));
        }
        let handle = Engine::new()
            .resume(
                wf.clone(),
                &ckpt.run_id,
                snapshot,
                None,
                "bench",
                RunOptions::new(),
            )
            .expect("resumes");
        handle.wait().await
    });
    let resume_time = RESUMED_AT
        .lock()
        .ok()
        .and_then(|at| *at)
        .map(|at| at - t0)
        .expect("the resumed run reached its next task");
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    (resume_time, memory().1)
}

/// Resume the checkpoint at `path` in a fresh process running this benchmark.
fn resume_elsewhere(path: &Path) -> (Duration, u64) {
    let exe = std::env::current_exe().expect("the benchmark's path");
    let out = std::process::Command::new(exe)
        .env(RESUME_FROM, path)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the resuming process runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the resuming process reports");
    (
        Duration::from_secs_f64(line["seconds"].as_f64().expect("seconds")),
        line["peak_rss"].as_u64().expect("peak"),
    )
}

/// Set in the process that resumes a checkpoint (the path of the `.ckpt`).
const RESUME_FROM: &str = "GRAFLOW_BENCH_RESUME_FROM";

fn bench(
    rt: &tokio::runtime::Runtime,
    name: &str,
    (records, record_bytes): (usize, usize),
    runs: usize,
    dir: &Path,
) {
    let wf = workflow(records, record_bytes);
    let mut saves = Vec::new();
    let mut resumes = Vec::new();
    let mut bytes = 0;
    let mut content = None;
    let (mut save_peak, mut resume_peak, mut live) = (0u64, 0u64, 0u64);
    let mut fresh_resume = Duration::ZERO;
    for run in 0..=runs {
        let sub = dir.join(format!("{name}-{run}"));
        let config = CheckpointConfig {
            dir: sub.clone(),
            workflow: WorkflowSource {
                name: name.into(),
                ..WorkflowSource::default()
            },
            keep_last: None,
            keep_for: None,
            compression: compression(),
            signing_key: None,
            mirror: None,
        };
        let out = rt.block_on(Engine::new().run(wf.clone(), RunOptions::new().checkpoints(config)));
        assert!(out.succeeded(), "{:?}", out.error);
        let save_seconds = out.results["save"]["seconds"].as_f64().expect("save time");
        save_peak = save_peak.max(out.results["save"]["peak_rss"].as_u64().unwrap_or(0));
        live = live.max(out.results["save"]["rss_before"].as_u64().unwrap_or(0));
        drop(out);
        let info = store::list(&sub).pop().expect("a checkpoint");
        let path = info.path;
        bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        content = info.content_bytes;
        // The resume is timed here (from reading the file until the next task starts), and
        // its memory measured in a process of its own, as `graflow resume` runs.
        let (resume_time, _) = resume_here(rt, &path);
        if run == runs {
            let (time, peak) = resume_elsewhere(&path);
            fresh_resume = time;
            resume_peak = peak;
        }
        if run > 0 || runs == 0 {
            saves.push(Duration::from_secs_f64(save_seconds));
            resumes.push(resume_time);
        }
        let _ = std::fs::remove_dir_all(&sub);
    }
    // Peak resident memory of the whole process while saving (the run's channel is live)
    // and while resuming, against the checkpoint's size.
    let json_bytes = content.unwrap_or(bytes);
    let ratio = |peak: u64| (peak as f64 / json_bytes.max(1) as f64 * 100.0).round() / 100.0;
    let mb = |b: u64| (b as f64 / 1e5).round() / 10.0;
    report_with(
        &format!("checkpoint_save_{name}"),
        1,
        &saves,
        json!({"bytes": bytes, "compressed": content.is_some(), "content_bytes": json_bytes, "rss_before_mb": mb(live), "peak_rss_mb": mb(save_peak), "peak_rss_per_byte": ratio(save_peak)}),
    );
    report_with(
        &format!("checkpoint_resume_{name}"),
        1,
        &resumes,
        json!({
            "bytes": bytes,
            "compressed": content.is_some(),
            "content_bytes": json_bytes,
            "fresh_process_seconds": fresh_resume.as_secs_f64(),
            "peak_rss_mb": mb(resume_peak),
            "peak_rss_per_byte": ratio(resume_peak),
        }),
    );
}

/// Compression as `GRAFLOW_BENCH_COMPRESSION` says: `never`, else the default.
fn compression() -> graflow_engine::checkpoint::Compression {
    match std::env::var("GRAFLOW_BENCH_COMPRESSION").as_deref() {
        Ok("never") => graflow_engine::checkpoint::Compression::Never,
        _ => graflow_engine::checkpoint::Compression::default(),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(path) = std::env::var_os(RESUME_FROM) {
        let (time, peak) = resume_here(&rt, Path::new(&path));
        println!(
            "{}",
            json!({"seconds": time.as_secs_f64(), "peak_rss": peak})
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("graflow-ckpt-bench-{}", std::process::id()));
    // The largest first: the peak resident memory is reset before each measure, but the
    // allocator keeps what smaller cases freed.
    // `GRAFLOW_BENCH_CASE=100mb` runs one case (its memory figures then are its own).
    let only = std::env::var("GRAFLOW_BENCH_CASE").ok();
    let cases = [
        ("100mb", (100_000, 1_000), 5),
        ("10mb", (10_000, 1_000), RUNS),
        ("1mb_blob", (1, 1 << 20), RUNS),
    ];
    for (name, size, runs) in cases {
        if only.as_deref().is_none_or(|o| o == name) {
            // `GRAFLOW_BENCH_RUNS=N` times N runs (after the warm-up one).
            let runs = std::env::var("GRAFLOW_BENCH_RUNS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(runs);
            bench(&rt, name, size, runs, &dir);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
