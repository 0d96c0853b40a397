//! What the event streams share: a cap on how many are open at once (each holds a slot until
//! its client goes), the keep-alive period, and the server's stop signal, which ends every
//! stream so a graceful shutdown does not wait for clients that never hang up.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::AppState;
use super::routes::ApiError;

/// A comment line is sent after this long without a message (proxies and clients keep the
/// connection open).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Streams open at once, all kinds together; more get 503.
pub const MAX_STREAMS: usize = 64;

/// The streams of one server.
#[derive(Debug)]
pub struct Streams {
    slots: Arc<Semaphore>,
    max: usize,
    stop_tx: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
}

impl Streams {
    /// At most `max` streams at once.
    pub fn new(max: usize) -> Self {
        let (stop_tx, stop) = watch::channel(false);
        Streams {
            slots: Arc::new(Semaphore::new(max)),
            max,
            stop_tx,
            stop,
        }
    }

    /// End every stream (the server is stopping).
    pub fn stop(&self) {
        let _ = self.stop_tx.send(true);
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// The stop signal.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }
}

/// One open stream's slot, and its view of the stop signal.
#[derive(Debug)]
pub struct StreamGuard {
    _slot: OwnedSemaphorePermit,
    stop: watch::Receiver<bool>,
}

impl StreamGuard {
    /// Whether the server is stopping.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Wait `d`; `false` when the server began stopping meanwhile.
    pub async fn wait(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.stopping(),
            _ = self.stop.changed() => false,
        }
    }

    /// Wait for `f`; `None` when the server began stopping first.
    pub async fn until<F: Future>(&mut self, f: F) -> Option<F::Output> {
        if self.stopping() {
            return None;
        }
        tokio::select! {
            out = f => Some(out),
            _ = self.stop.changed() => None,
        }
    }
}

/// A slot for a new stream, or 503 when all are taken.
pub fn acquire(s: &AppState) -> Result<StreamGuard, ApiError> {
    let streams = &s.streams;
    match streams.slots.clone().try_acquire_owned() {
        Ok(slot) => Ok(StreamGuard {
            _slot: slot,
            stop: streams.stop_signal(),
        }),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many streams",
            format!(
                "{} event streams are open, the most this server keeps; try again later",
                streams.max
            ),
        )),
    }
}

/// The Server-Sent Events response that sends what `next` gives, starting from `state`, until
/// it gives `None`; with the keep-alive comments every stream sends.
pub fn respond<T, F, Fut>(state: T, next: F) -> Response
where
    T: Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<(Event, T)>> + Send + 'static,
{
    use futures::StreamExt;
    let events = futures::stream::unfold(state, next).map(Ok::<Event, std::convert::Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response()
}
