//! The run's events to Redis: a sink that never slows the run. [`accept`](RedisEventSink::accept)
//! only counts and queues; a writer task sends queued events in batches (one pipeline per
//! batch) to the run's capped stream `P:{r:R}:events`, updates its `info` hash and the index
//! of runs. When more than [`SinkConfig::buffer`] events wait (Redis slow or away), new ones
//! are dropped and counted; the next write puts an `events_dropped` event with the count in
//! their place, so a reader knows. `run_finished` is never dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::distributed::conn::Link;
use crate::distributed::keys::Keys;
use crate::events::{EventKind, RunEvent, RunStatus};
use crate::sink::EventSink;

/// How the sink writes.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Events that may wait for Redis before new ones are dropped.
    pub buffer: u64,
    /// About how many events the run's stream keeps (older ones are trimmed).
    pub stream_cap: u64,
    /// How long an ended run's stream and record stay.
    pub retention: Duration,
    /// Runs the index keeps (the newest).
    pub index_cap: u64,
    /// How long one batch may take before it is given up (and its events counted as dropped).
    pub write_timeout: Duration,
    /// The SHA-256 of the workflow file the coordinator stored for its workers (`P:wf:<hash>`):
    /// a studio attaching to the run loads the workflow from it.
    pub workflow_hash: Option<String>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            buffer: 10_000,
            stream_cap: 10_000,
            retention: Duration::from_secs(24 * 3600),
            index_cap: 1_000,
            write_timeout: Duration::from_secs(5),
            workflow_hash: None,
        }
    }
}

/// What the sink did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Events written to Redis.
    pub written: u64,
    /// Events dropped (buffer full, or Redis failed a batch).
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    /// Dropped events not yet reported in the stream.
    unreported: AtomicU64,
}

/// Sends a run's events to its Redis stream without ever blocking the run.
pub struct RedisEventSink {
    tx: UnboundedSender<RunEvent>,
    counters: Arc<Counters>,
    buffer: u64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RedisEventSink {
    /// A sink writing through `link` under `keys`; its writer task runs on the current
    /// tokio runtime until the run's `run_finished` is written.
    pub fn start(link: Link, keys: Keys, config: SinkConfig) -> Arc<RedisEventSink> {
        let (tx, rx) = unbounded_channel();
        let counters = Arc::new(Counters::default());
        let buffer = config.buffer.max(1);
        let writer = tokio::spawn(write_loop(link, keys, config, rx, counters.clone()));
        Arc::new(RedisEventSink {
            tx,
            counters,
            buffer,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Events written and dropped so far.
    pub fn stats(&self) -> SinkStats {
        SinkStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }

    /// Wait up to `within` for the writer to send what is queued (call it after the run
    /// ended); returns the final counts.
    pub async fn finish(&self, within: Duration) -> SinkStats {
        let writer = self.writer.lock().take();
        if let Some(mut writer) = writer
            && tokio::time::timeout(within, &mut writer).await.is_err()
        {
            writer.abort();
        }
        self.stats()
    }
}

impl EventSink for RedisEventSink {
    fn accept(&self, event: &RunEvent) {
        let last = matches!(event.kind, EventKind::RunFinished { .. });
        let queued = self.counters.queued.fetch_add(1, Ordering::AcqRel);
        if queued >= self.buffer && !last {
            self.counters.queued.fetch_sub(1, Ordering::AcqRel);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.unreported.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.send(event.clone()).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Paused => "paused",
    }
}

/// Write queued events in batches until `run_finished` is written (or every sender is gone).
async fn write_loop(
    link: Link,
    keys: Keys,
    config: SinkConfig,
    mut rx: UnboundedReceiver<RunEvent>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(512);
    let mut last_run: Option<Arc<str>> = None;
    loop {
        let n = match tokio::time::timeout(Duration::from_secs(5), rx.recv_many(&mut batch, 512))
            .await
        {
            Ok(n) => n,
            Err(_) => {
                // Quiet for a while: show readers the run is still alive.
                if let Some(run) = &last_run {
                    touch(&link, &keys, run, &config).await;
                }
                continue;
            }
        };
        if n == 0 {
            return;
        }
        counters.queued.fetch_sub(n as u64, Ordering::AcqRel);
        let finished = batch
            .iter()
            .any(|e| matches!(e.kind, EventKind::RunFinished { .. }));
        last_run = batch.last().map(|e| e.run_id.clone());
        let dropped_before = counters.unreported.swap(0, Ordering::AcqRel);
        let sent = write_batch(&link, &keys, &config, &batch, dropped_before).await;
        match sent {
            Ok(()) => {
                counters.written.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(
                    "the run's event stream on Redis at {}: {e}; {n} events dropped",
                    link.address()
                );
                counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
                counters
                    .unreported
                    .fetch_add(n as u64 + dropped_before, Ordering::Relaxed);
            }
        }
        batch.clear();
        if finished {
            return;
        }
    }
}

/// Keep an idle live run's record fresh.
async fn touch(link: &Link, keys: &Keys, run: &str, config: &SinkConfig) {
    let info = keys.run(run).info();
    let mut c = link.conn();
    let _ = tokio::time::timeout(
        config.write_timeout,
        redis::pipe()
            .cmd("HSET")
            .arg(&info)
            .arg("updated_ms")
            .arg(millis(SystemTime::now()))
            .ignore()
            .query_async::<()>(&mut c),
    )
    .await;
}

/// One pipeline: the dropped-count marker (if any), every event, the run's record, the index.
async fn write_batch(
    link: &Link,
    keys: &Keys,
    config: &SinkConfig,
    batch: &[RunEvent],
    dropped_before: u64,
) -> Result<(), String> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    let run_keys = keys.run(&first.run_id);
    let (stream, info) = (run_keys.events(), run_keys.info());
    let mut pipe = redis::pipe();
    let add = |pipe: &mut redis::Pipeline, event: &RunEvent| {
        pipe.cmd("XADD")
            .arg(&stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(config.stream_cap)
            .arg("*")
            .arg("n")
            .arg(event.name())
            .arg("e")
            .arg(event.to_json_line())
            .ignore();
    };
    if dropped_before > 0 {
        let marker = RunEvent {
            run_id: first.run_id.clone(),
            ts: SystemTime::now(),
            kind: EventKind::EventsDropped {
                count: dropped_before,
            },
        };
        add(&mut pipe, &marker);
    }
    let now = millis(SystemTime::now());
    let mut fields: Vec<(&str, String)> = vec![("updated_ms", now.to_string())];
    let mut ended = false;
    for event in batch {
        add(&mut pipe, event);
        match &event.kind {
            EventKind::RunStarted { workflow, .. } => {
                fields.push(("workflow", workflow.clone()));
                fields.push(("state", "live".into()));
                fields.push(("started_ms", millis(event.ts).to_string()));
                fields.push(("host", crate::distributed::host_name()));
                if let Some(hash) = &config.workflow_hash {
                    fields.push(("wf", hash.clone()));
                }
                pipe.cmd("ZADD")
                    .arg(keys.runs())
                    .arg(millis(event.ts))
                    .arg(&*event.run_id)
                    .ignore();
                pipe.cmd("ZREMRANGEBYRANK")
                    .arg(keys.runs())
                    .arg(0)
                    .arg(-(config.index_cap as i64) - 1)
                    .ignore();
            }
            EventKind::RunFinished { status, error, .. } => {
                fields.push(("state", "ended".into()));
                fields.push(("status", status_name(*status).into()));
                fields.push(("ended_ms", millis(event.ts).to_string()));
                if let Some(e) = error {
                    fields.push(("error", e.clone()));
                }
                ended = true;
            }
            _ => {}
        }
    }
    pipe.cmd("HSET").arg(&info);
    for (k, v) in &fields {
        pipe.arg(*k).arg(v);
    }
    pipe.ignore();
    pipe.cmd("HINCRBY")
        .arg(&info)
        .arg("events")
        .arg(batch.len() as u64 + u64::from(dropped_before > 0))
        .ignore();
    if dropped_before > 0 {
        pipe.cmd("HINCRBY")
            .arg(&info)
            .arg("dropped")
            .arg(dropped_before)
            .ignore();
    }
    // The keys last a retention past the last write: a coordinator that dies leaves no
    // garbage, an ended run stays readable that long.
    let ttl = config.retention.as_secs().max(60);
    pipe.cmd("EXPIRE").arg(&stream).arg(ttl).ignore();
    pipe.cmd("EXPIRE").arg(&info).arg(ttl).ignore();
    if ended {
        pipe.cmd("DEL").arg(run_keys.control()).ignore();
    }
    let mut c = link.conn();
    match tokio::time::timeout(config.write_timeout, pipe.query_async::<()>(&mut c)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "a batch took longer than {:?}",
            config.write_timeout
        )),
    }
}
