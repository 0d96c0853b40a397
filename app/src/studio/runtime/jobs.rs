//! Background jobs: the canvas layout worker (one job at a time, the newest request wins) and
//! the other one-shot jobs (loading, history, channel snapshots) run on blocking threads or
//! tasks and answer with a `Msg`.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::studio::app::Msg;
use crate::studio::graph::layout;
use crate::studio::graph::model::ViewGraph;

/// Lays out graphs off the UI task. Requests made while a layout runs replace each other;
/// only the newest is laid out next.
pub struct LayoutWorker {
    tx: watch::Sender<Option<(usize, ViewGraph)>>,
}

impl LayoutWorker {
    /// Start the worker; results go to `out`.
    pub fn start(out: mpsc::Sender<Msg>) -> LayoutWorker {
        let (tx, mut rx) = watch::channel::<Option<(usize, ViewGraph)>>(None);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let request = rx.borrow_and_update().clone();
                let Some((index, view)) = request else {
                    continue;
                };
                let result = tokio::task::spawn_blocking(move || layout::compute(&view)).await;
                let msg = match result {
                    Ok(l) => Msg::Layout {
                        index,
                        layout: Arc::new(l),
                    },
                    Err(e) => Msg::Problem(format!("layout failed: {e}")),
                };
                if out.send(msg).await.is_err() {
                    break;
                }
            }
        });
        LayoutWorker { tx }
    }

    /// Ask for a layout (replacing any request not started yet).
    pub fn request(&self, index: usize, view: ViewGraph) {
        self.tx.send_replace(Some((index, view)));
    }
}
