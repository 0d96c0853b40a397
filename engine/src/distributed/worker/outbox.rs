//! A worker's writes to the outboxes of the runs it serves: log lines and feedback
//! requests, in order, batched into pipelines. An attempt waits for
//! [`flushed`](Outbox::flushed) before it commits, so the coordinator reads every line of an
//! attempt before its outcome. When Redis is away the writes wait (up to a bound, then lines
//! are dropped and counted — never an outcome).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::distributed::conn::{Link, retry};

/// Lines waiting beyond this are dropped (and counted) while Redis is unreachable.
const MAX_WAITING: usize = 100_000;

/// One entry to add to a run's outbox stream.
pub(crate) struct Entry {
    /// The outbox stream.
    pub stream: String,
    /// Field-value pairs.
    pub fields: Vec<(&'static str, String)>,
}

/// The ordered writer.
pub(crate) struct Outbox {
    waiting: Mutex<Vec<Entry>>,
    pushed: AtomicU64,
    written: watch::Sender<u64>,
    wake: Notify,
    /// Lines dropped because Redis was away too long.
    pub dropped: AtomicU64,
}

impl Outbox {
    pub fn new() -> Arc<Outbox> {
        Arc::new(Outbox {
            waiting: Mutex::new(Vec::new()),
            pushed: AtomicU64::new(0),
            written: watch::Sender::new(0),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        })
    }

    /// Queue an entry; returns its sequence number.
    pub fn push(&self, entry: Entry) -> u64 {
        let mut waiting = self.waiting.lock();
        if waiting.len() >= MAX_WAITING {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return self.pushed.load(Ordering::Acquire);
        }
        waiting.push(entry);
        let seq = self.pushed.fetch_add(1, Ordering::AcqRel) + 1;
        drop(waiting);
        self.wake.notify_one();
        seq
    }

    /// Wait until entry `seq` (and every one before it) is written.
    pub async fn flushed(&self, seq: u64) {
        let mut written = self.written.subscribe();
        let _ = written.wait_for(|w| *w >= seq).await;
    }

    /// Write queued entries until the process ends.
    pub async fn run(self: Arc<Self>, link: Link) {
        loop {
            let batch = std::mem::take(&mut *self.waiting.lock());
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let upto = *self.written.borrow() + batch.len() as u64;
            let result = retry(&link, "sending log lines", None, |mut c| {
                let mut pipe = redis::pipe();
                for entry in &batch {
                    pipe.cmd("XADD").arg(&entry.stream).arg("*");
                    for (k, v) in &entry.fields {
                        pipe.arg(*k).arg(v);
                    }
                    pipe.ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await;
            if let Err(e) = result {
                tracing::warn!("sending {} log lines to Redis: {e}", batch.len());
            }
            self.written.send_replace(upto);
        }
    }
}
