//! Checkpoint benchmarks, one JSON line per workload (`workload`, `n`, `seconds` = median of
//! the runs, `per_item_us`, `bytes`):
//! `checkpoint_save_10mb` / `checkpoint_resume_10mb` — a run whose channel holds 10,000
//! records of about 1 KB (targets ≤ 30 ms each); `checkpoint_save_1mb_blob` /
//! `checkpoint_resume_1mb_blob` — one 1 MB value (targets ≤ 3 ms each).
//!
//! Save is timed inside the task that calls `checkpoint_now` (pause, snapshot, write with
//! fsync); resume from reading the file until the resumed run starts its next task.
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
use support::report_with;

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
        let t0 = Instant::now();
        ctx.checkpoint_now(json!({"bench": true}))
            .await
            .map_err(anyhow::Error::msg)?;
        anyhow::Ok(json!(t0.elapsed().as_secs_f64()))
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

fn bench(
    rt: &tokio::runtime::Runtime,
    name: &str,
    records: usize,
    record_bytes: usize,
    dir: &Path,
) {
    let wf = workflow(records, record_bytes);
    let mut saves = Vec::new();
    let mut resumes = Vec::new();
    let mut bytes = 0;
    for run in 0..=RUNS {
        let sub = dir.join(format!("{name}-{run}"));
        let config = CheckpointConfig {
            dir: sub.clone(),
            workflow: WorkflowSource {
                name: name.into(),
                ..WorkflowSource::default()
            },
            keep_last: None,
            signing_key: None,
        };
        let out = rt.block_on(Engine::new().run(wf.clone(), RunOptions::new().checkpoints(config)));
        assert!(out.succeeded(), "{:?}", out.error);
        let save_seconds = out.results["save"].as_f64().expect("save time");
        let path = store::list(&sub).pop().expect("a checkpoint").path;
        bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let t0 = Instant::now();
        if let Ok(mut at) = RESUMED_AT.lock() {
            *at = None;
        }
        let resumed = rt.block_on(async {
            let ckpt = store::load(&path).expect("loads");
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
        if run > 0 {
            saves.push(Duration::from_secs_f64(save_seconds));
            resumes.push(resume_time);
        }
        let _ = std::fs::remove_dir_all(&sub);
    }
    report_with(
        &format!("checkpoint_save_{name}"),
        1,
        &saves,
        json!({"bytes": bytes}),
    );
    report_with(
        &format!("checkpoint_resume_{name}"),
        1,
        &resumes,
        json!({"bytes": bytes}),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("graflow-ckpt-bench-{}", std::process::id()));
    bench(&rt, "10mb", 10_000, 1_000, &dir);
    bench(&rt, "1mb_blob", 1, 1 << 20, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
