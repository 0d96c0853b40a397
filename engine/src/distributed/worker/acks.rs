//! Acknowledgements of queue entries, batched: `XACK` and `XDEL` of every entry finished since
//! the last batch, per stream, in one round trip. An entry not yet acknowledged when the worker
//! dies is only found finished by a reaper, which drops it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::GROUP;

/// The batcher.
pub(crate) struct Acks {
    waiting: Mutex<(HashMap<String, Vec<String>>, u64)>,
    written: watch::Sender<u64>,
    wake: Notify,
}

impl Acks {
    pub fn new() -> Arc<Acks> {
        Arc::new(Acks {
            waiting: Mutex::new((HashMap::new(), 0)),
            written: watch::Sender::new(0),
            wake: Notify::new(),
        })
    }

    /// Acknowledge `entry` of `stream` soon.
    pub fn push(&self, stream: &str, entry: &str) {
        let mut w = self.waiting.lock();
        w.0.entry(stream.to_string())
            .or_default()
            .push(entry.to_string());
        w.1 += 1;
        drop(w);
        self.wake.notify_one();
    }

    /// Wait until every acknowledgement pushed so far is written.
    pub async fn flushed(&self) {
        let target = self.waiting.lock().1;
        let mut written = self.written.subscribe();
        let _ = written.wait_for(|w| *w >= target).await;
    }

    /// Write batches until the process ends.
    pub async fn run(self: Arc<Self>, link: Link) {
        loop {
            let (batch, upto) = {
                let mut w = self.waiting.lock();
                (std::mem::take(&mut w.0), w.1)
            };
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let _ = retry(&link, "acknowledging tasks", None, |mut c| {
                let mut pipe = redis::pipe();
                for (stream, ids) in &batch {
                    for chunk in ids.chunks(1000) {
                        pipe.cmd("XACK").arg(stream).arg(GROUP).arg(chunk).ignore();
                        pipe.cmd("XDEL").arg(stream).arg(chunk).ignore();
                    }
                }
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await;
            self.written.send_replace(upto);
        }
    }
}
