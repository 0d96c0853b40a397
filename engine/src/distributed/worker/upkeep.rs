//! A worker's periodic work: renew the leases of running attempts (and stop the ones that
//! were cancelled or whose lease could not be renewed in time), publish the worker's record,
//! and reap entries of lost workers on its queues.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Value as Reply;

use crate::distributed::conn::retry;
use crate::distributed::keys;
use crate::distributed::metrics::WorkerRecord;
use crate::distributed::scripts;

use super::execute::{StopReason, ack, requeue};
use super::{InFlight, WorkerInner};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The worker's record as published.
pub(crate) fn record(inner: &WorkerInner) -> WorkerRecord {
    let m = &inner.metrics;
    let busy = m.busy.load(Ordering::Relaxed);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (duration_count, duration_sum_us) = m.duration.totals();
    WorkerRecord {
        duration_sum_us,
        duration_count,
        id: inner.id.clone(),
        host: inner.host.clone(),
        pid: std::process::id(),
        queues: inner.config.queues.clone(),
        concurrency: inner.config.concurrency.get(),
        busy,
        processed: load(&m.processed),
        succeeded: load(&m.succeeded),
        failed: load(&m.failed),
        retried: load(&m.retried),
        reclaimed: load(&m.reclaimed),
        dead_lettered: load(&m.dead_lettered),
        uptime_secs: m.started.elapsed().as_secs_f64(),
        beat_ms: now_ms(),
        state: if inner.draining.load(Ordering::Acquire) {
            "draining"
        } else if busy > 0 {
            "busy"
        } else {
            "idle"
        }
        .into(),
    }
}

/// Publish the worker's record (it expires when the worker stops beating).
pub(crate) async fn beat(inner: &Arc<WorkerInner>) {
    let rec = record(inner);
    let json = serde_json::to_string(&rec).unwrap_or_default();
    let ttl = (inner.config.heartbeat() * 5).max(Duration::from_secs(5));
    let (key, set) = (inner.keys.worker(&inner.id), inner.keys.workers());
    let _ = retry(
        &inner.link,
        "publishing the worker record",
        Some(ttl),
        |mut c| {
            let (key, set, json) = (key.clone(), set.clone(), json.clone());
            let id = inner.id.clone();
            async move {
                redis::pipe()
                    .cmd("SET")
                    .arg(key)
                    .arg(json)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .ignore()
                    .cmd("ZADD")
                    .arg(set)
                    .arg(rec.beat_ms)
                    .arg(id)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            }
        },
    )
    .await;
}

/// Remove the worker's record and, when nothing is pending for it, its consumers.
pub(crate) async fn deregister(inner: &Arc<WorkerInner>) {
    let _ = retry(
        &inner.link,
        "deregistering",
        Some(Duration::from_secs(5)),
        |mut c| {
            let (key, set, id) = (
                inner.keys.worker(&inner.id),
                inner.keys.workers(),
                inner.id.clone(),
            );
            async move {
                redis::pipe()
                    .cmd("DEL")
                    .arg(key)
                    .ignore()
                    .cmd("ZREM")
                    .arg(set)
                    .arg(id)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            }
        },
    )
    .await;
    for q in &inner.config.queues {
        let stream = inner.keys.queue(q).stream();
        let pending: Result<Vec<Reply>, _> = retry(
            &inner.link,
            "deregistering",
            Some(Duration::from_secs(5)),
            |mut c| {
                let stream = stream.clone();
                let id = inner.id.clone();
                async move {
                    redis::cmd("XPENDING")
                        .arg(stream)
                        .arg(keys::GROUP)
                        .arg("-")
                        .arg("+")
                        .arg(1)
                        .arg(id)
                        .query_async(&mut c)
                        .await
                }
            },
        )
        .await;
        // A consumer with pending entries stays: deleting it would make them unclaimable.
        if matches!(pending, Ok(ref p) if p.is_empty()) {
            let _: Result<i64, _> = retry(
                &inner.link,
                "deregistering",
                Some(Duration::from_secs(5)),
                |mut c| {
                    let stream = stream.clone();
                    let id = inner.id.clone();
                    async move {
                        redis::cmd("XGROUP")
                            .arg("DELCONSUMER")
                            .arg(stream)
                            .arg(keys::GROUP)
                            .arg(id)
                            .query_async(&mut c)
                            .await
                    }
                },
            )
            .await;
        }
    }
}

/// Heartbeats every [`heartbeat`](crate::distributed::worker::WorkerConfig::heartbeat), the
/// record every second, the reaper every half lease.
pub(crate) async fn run(inner: Arc<WorkerInner>) {
    let every = inner.config.heartbeat();
    let mut last_record = Instant::now();
    // Half a lease, at most a second: a lost attempt runs again within a lease and a second.
    let reap_every =
        (inner.config.lease / 2).clamp(Duration::from_millis(200), Duration::from_secs(1));
    // Spread reapers of workers started together.
    let mut next_reap = Instant::now() + reap_every.mul_f64(0.5 + rand::random::<f64>() * 0.5);
    let mut trimmed_at = u64::MAX;
    loop {
        tokio::time::sleep(every).await;
        extend_leases(&inner).await;
        trim_when_idle(&inner, &mut trimmed_at);
        if last_record.elapsed() >= Duration::from_secs(1) {
            last_record = Instant::now();
            beat(&inner).await;
        }
        if Instant::now() >= next_reap {
            reap(&inner).await;
            next_reap = Instant::now() + reap_every;
        }
    }
}

/// Give memory freed by finished attempts back to the system once the worker is idle (the
/// allocator keeps it otherwise), once per burst of work.
fn trim_when_idle(inner: &WorkerInner, trimmed_at: &mut u64) {
    let processed = inner.metrics.processed.load(Ordering::Relaxed);
    if inner.metrics.busy.load(Ordering::Relaxed) > 0 || processed == *trimmed_at {
        return;
    }
    *trimmed_at = processed;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the process's own heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Renew every running attempt's lease; stop those cancelled, taken over, or not renewed for
/// a whole lease (Redis unreachable: another worker may take them, so they must not commit).
async fn extend_leases(inner: &Arc<WorkerInner>) {
    let running: Vec<Arc<InFlight>> = inner.inflight.lock().values().cloned().collect();
    let lease = inner.config.lease;
    let beats = running.iter().map(|f| {
        let inner = inner.clone();
        let f = f.clone();
        async move {
            let keys = inner.keys.run(&f.run);
            let reply: Result<String, _> = retry(
                &inner.link,
                "renewing a lease",
                Some(inner.config.heartbeat()),
                |mut c| {
                    let keys = &keys;
                    let f = &f;
                    let inner = &inner;
                    async move {
                        let _: Reply = redis::cmd("XCLAIM")
                            .arg(&f.stream)
                            .arg(keys::GROUP)
                            .arg(&inner.id)
                            .arg(0)
                            .arg(&f.entry)
                            .arg("JUSTID")
                            .query_async(&mut c)
                            .await?;
                        scripts::HEARTBEAT
                            .key(keys.attempt(&f.tid))
                            .key(keys.coord())
                            .arg(&inner.id)
                            .arg(f.epoch)
                            .arg(lease.as_millis() as u64)
                            .invoke_async(&mut c)
                            .await
                    }
                },
            )
            .await;
            let stop = match reply.as_deref() {
                Ok("ok") => {
                    *f.extended.lock() = Instant::now();
                    None
                }
                Ok("cancelled") => Some(StopReason::Cancelled),
                Ok(_) => Some(StopReason::Lost),
                Err(_) if f.extended.lock().elapsed() >= lease => Some(StopReason::Lost),
                Err(_) => None,
            };
            if let Some(reason) = stop {
                let mut r = f.reason.lock();
                if r.is_none() {
                    *r = Some(reason);
                }
                drop(r);
                f.stop.cancel();
            }
        }
    });
    futures::future::join_all(beats).await;
}

/// Take over entries of this worker's queues that nobody acknowledged for longer than a
/// lease: finished or gone ones are dropped, live ones left alone, lost ones queued again
/// (their old holder is fenced off by the new epoch).
async fn reap(inner: &Arc<WorkerInner>) {
    let lease_ms = inner.config.lease.as_millis() as u64;
    for q in &inner.config.queues {
        let stream = inner.keys.queue(q).stream();
        let mut cursor = "0-0".to_string();
        for _ in 0..10 {
            let claimed: Result<(String, Vec<Reply>, Reply), _> = retry(
                &inner.link,
                "reaping",
                Some(inner.config.heartbeat()),
                |mut c| {
                    let (stream, cursor) = (stream.clone(), cursor.clone());
                    let id = inner.id.clone();
                    async move {
                        let reply: Vec<Reply> = redis::cmd("XAUTOCLAIM")
                            .arg(stream)
                            .arg(keys::GROUP)
                            .arg(id)
                            .arg(lease_ms)
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(100)
                            .query_async(&mut c)
                            .await?;
                        let mut it = reply.into_iter();
                        let next = match it.next() {
                            Some(Reply::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
                            Some(Reply::SimpleString(s)) => s,
                            _ => "0-0".into(),
                        };
                        let entries = match it.next() {
                            Some(Reply::Array(a)) => a,
                            _ => Vec::new(),
                        };
                        Ok((next, entries, it.next().unwrap_or(Reply::Nil)))
                    }
                },
            )
            .await;
            let Ok((next, entries, _deleted)) = claimed else {
                return;
            };
            for entry in entries {
                reclaim_entry(inner, &stream, entry).await;
            }
            if next == "0-0" {
                break;
            }
            cursor = next;
        }
    }
}

/// One claimed entry: `[id, [field, value, …]]` (a deleted entry has no fields).
async fn reclaim_entry(inner: &Arc<WorkerInner>, stream: &str, entry: Reply) {
    let Reply::Array(parts) = entry else {
        return;
    };
    let text = |v: &Reply| match v {
        Reply::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let Some(id) = parts.first().and_then(text) else {
        return;
    };
    let fields: Vec<String> = match parts.get(1) {
        Some(Reply::Array(f)) => f.iter().filter_map(text).collect(),
        _ => Vec::new(),
    };
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv.first().map(String::as_str) == Some(name))
            .and_then(|kv| kv.get(1).cloned())
    };
    let (Some(run), Some(tid)) = (field("run"), field("tid")) else {
        ack(inner, stream, &id);
        return;
    };
    if inner.inflight.lock().contains_key(&id) {
        return; // our own running attempt: its heartbeat takes the entry back
    }
    let keys = inner.keys.run(&run);
    let verdict: Result<String, _> = retry(
        &inner.link,
        "reaping",
        Some(inner.config.heartbeat()),
        |mut c| {
            let attempt = keys.attempt(&tid);
            async move { scripts::RECLAIM.key(attempt).invoke_async(&mut c).await }
        },
    )
    .await;
    match verdict.as_deref() {
        Ok("ack") => ack(inner, stream, &id),
        Ok("requeue") => {
            inner.metrics.reclaimed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "worker {}: {run}/{tid} lost its worker; queued again",
                inner.id
            );
            requeue(inner, stream, &id, &run, &tid).await;
        }
        _ => {}
    }
}
