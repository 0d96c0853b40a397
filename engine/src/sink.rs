//! Event sinks: more places a run's events go, besides the [`RunHandle`](crate::RunHandle)'s
//! stream that the studio and `graflow run` read. A sink is handed every event as it happens
//! and must return at once: it never slows or blocks the run (a sink that writes somewhere
//! slow keeps a bounded buffer and counts what it had to drop). The Redis event stream
//! (`distributed::events`) is one.

use std::sync::Arc;

use crate::events::RunEvent;

/// Takes a run's events as they happen.
pub trait EventSink: Send + Sync {
    /// One event. Called on the run's own tasks: return at once, never wait.
    fn accept(&self, event: &RunEvent);
}

impl std::fmt::Debug for dyn EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

/// A sink that calls a function: handy for tests and small embeddings.
pub struct FnSink<F>(pub F);

impl<F: Fn(&RunEvent) + Send + Sync> EventSink for FnSink<F> {
    fn accept(&self, event: &RunEvent) {
        (self.0)(event)
    }
}

/// Every sink of a run, called in order.
#[derive(Clone, Default, Debug)]
pub struct Sinks(Vec<Arc<dyn EventSink>>);

impl Sinks {
    /// Add a sink.
    pub fn push(&mut self, sink: Arc<dyn EventSink>) {
        self.0.push(sink);
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hand `event` to every sink.
    pub fn accept(&self, event: &RunEvent) {
        for sink in &self.0 {
            sink.accept(event);
        }
    }
}
