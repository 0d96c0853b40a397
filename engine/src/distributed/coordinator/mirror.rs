//! Results and tasks added at run time, written where workers read them (inputs,
//! `ctx.result`, `next_task` of an added task) before any attempt sent later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::dispatch::FleetRunInfo;

use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::RunKeys;

use super::run::RunInner;

/// What the coordinator writes so workers see it before any attempt sent later: results and
/// tasks added at run time.
pub(super) enum MirrorOp {
    Result(String, Value),
    Added(String),
}

/// Writes [`MirrorOp`]s in batches; [`flushed`](Mirror::flushed) waits until everything
/// recorded so far is in Redis.
pub(super) struct Mirror {
    pub(super) ops: Mutex<Vec<MirrorOp>>,
    pub(super) recorded: AtomicU64,
    pub(super) written: watch::Sender<u64>,
    pub(super) wake: Notify,
}

impl Mirror {
    pub(super) fn new() -> Self {
        Mirror {
            ops: Mutex::new(Vec::new()),
            recorded: AtomicU64::new(0),
            written: watch::Sender::new(0),
            wake: Notify::new(),
        }
    }

    pub(super) fn push(&self, op: MirrorOp) {
        let mut ops = self.ops.lock();
        ops.push(op);
        self.recorded.fetch_add(1, Ordering::AcqRel);
        drop(ops);
        self.wake.notify_one();
    }

    pub(super) async fn flushed(&self) {
        let target = self.recorded.load(Ordering::Acquire);
        let mut written = self.written.subscribe();
        let _ = written.wait_for(|w| *w >= target).await;
    }
}

/// Write the results and added tasks known at the start (a resumed run's), replacing what a
/// previous coordinator left.
pub(super) async fn seed_mirror(
    link: &Link,
    keys: &RunKeys,
    info: &FleetRunInfo,
) -> Result<(), String> {
    let (results, dynamic) = (keys.results(), keys.dynamic());
    let values: Vec<(String, String)> = info
        .results
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default()))
        .collect();
    retry(
        link,
        "writing the run's results",
        Some(Duration::from_secs(30)),
        |mut c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("DEL").arg(&results).arg(&dynamic).ignore();
            for chunk in values.chunks(1000) {
                pipe.cmd("HSET").arg(&results);
                for (k, v) in chunk {
                    pipe.arg(k).arg(v);
                }
                pipe.ignore();
            }
            for chunk in info.dynamic.chunks(1000) {
                pipe.cmd("SADD").arg(&dynamic).arg(chunk).ignore();
            }
            async move { pipe.query_async::<()>(&mut c).await }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "writing the run's results on Redis at {}: {e}",
            link.address()
        )
    })
}

/// Write mirrored results and added tasks in batches.
pub(super) async fn write_mirror(run: Arc<RunInner>) {
    let (results, dynamic) = (run.keys.results(), run.keys.dynamic());
    loop {
        let ops = std::mem::take(&mut *run.mirror.ops.lock());
        if ops.is_empty() {
            run.mirror.wake.notified().await;
            continue;
        }
        let upto = {
            // Every op taken above was counted before it was pushed.
            let taken = ops.len() as u64;
            *run.mirror.written.borrow() + taken
        };
        let mut values: Vec<(String, String)> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        for op in ops {
            match op {
                MirrorOp::Result(k, v) => values.push((
                    k,
                    serde_json::to_string(&v).unwrap_or_else(|_| "null".into()),
                )),
                MirrorOp::Added(k) => added.push(k),
            }
        }
        let written = retry(
            run.link(),
            "writing results for the workers",
            None,
            |mut c| {
                let mut pipe = redis::pipe();
                for chunk in values.chunks(1000) {
                    pipe.cmd("HSET").arg(&results);
                    for (k, v) in chunk {
                        pipe.arg(k).arg(v);
                    }
                    pipe.ignore();
                }
                for chunk in added.chunks(1000) {
                    pipe.cmd("SADD").arg(&dynamic).arg(chunk).ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            },
        )
        .await;
        if let Err(e) = written {
            tracing::warn!("run {}: writing results for the workers: {e}", run.run_id);
        }
        run.mirror.written.send_replace(upto);
    }
}
