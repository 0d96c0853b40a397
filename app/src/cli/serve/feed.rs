//! `GET /api/feedback/events`: feedback changes as Server-Sent Events.
//!
//! The store (files or Redis) has no change feed of its own, and runs in other processes write
//! to it; so one watcher per server lists it every [`POLL`] while anyone listens (and at once
//! when this server answers or cancels a request) and turns what changed into events:
//! `requested`, `answered`, `cancelled` and `expired` (the asking task's wait ran out and the run
//! paused). Each gets the id `<boot>-<n>` (`boot` names this server's start, `n` counts up), and
//! the newest [`RING`] are kept so a client reconnecting with `Last-Event-ID` gets exactly what
//! it missed. When that is no longer possible (another server start, or too far behind) the
//! client gets a `reset` event instead: list `/api/feedback` again, then go on from there.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::Event;
use graflow_engine::hitl::{FeedbackBackend, FeedbackRequest, FeedbackStatus};
use serde_json::json;
use tokio::sync::{Notify, watch};

use super::AppState;
use super::routes::ApiError;
use super::streams::{self, StreamGuard};

/// How often the store is listed while anyone listens.
pub const POLL: Duration = Duration::from_millis(500);
/// Changes kept for clients that reconnect.
pub const RING: usize = 1024;
/// Changes taken from the ring at a time by one stream.
const BATCH: usize = 64;

/// Where a request stands, as far as events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Expired,
    Answered,
    Cancelled,
}

impl Phase {
    fn of(r: &FeedbackRequest) -> Phase {
        match r.status {
            FeedbackStatus::Answered => Phase::Answered,
            FeedbackStatus::Cancelled => Phase::Cancelled,
            FeedbackStatus::Pending if r.timed_out_at.is_some() => Phase::Expired,
            FeedbackStatus::Pending => Phase::Pending,
        }
    }

    fn event(self) -> &'static str {
        match self {
            Phase::Pending => "requested",
            Phase::Expired => "expired",
            Phase::Answered => "answered",
            Phase::Cancelled => "cancelled",
        }
    }
}

/// One change: its number, event name and JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its number (from 1, counting up).
    pub seq: u64,
    /// `requested`, `answered`, `cancelled` or `expired`.
    pub name: &'static str,
    /// `{"event": name, "id": request id, "request": the request}`.
    pub data: String,
}

#[derive(Debug, Default)]
struct Seen {
    known: HashMap<String, Phase>,
    ring: VecDeque<Change>,
    seq: u64,
    primed: bool,
}

impl Seen {
    fn push(&mut self, phase: Phase, r: &FeedbackRequest) {
        self.seq += 1;
        let name = phase.event();
        self.ring.push_back(Change {
            seq: self.seq,
            name,
            data: json!({"event": name, "id": r.id, "request": r}).to_string(),
        });
        while self.ring.len() > RING {
            self.ring.pop_front();
        }
    }

    /// Take in the store's requests; changes become events (not on the first look).
    fn update(&mut self, requests: &[FeedbackRequest]) {
        let mut now = HashMap::with_capacity(requests.len());
        for r in requests {
            let phase = Phase::of(r);
            if self.primed {
                match self.known.get(&r.id) {
                    None => {
                        self.push(Phase::Pending, r);
                        if phase != Phase::Pending {
                            self.push(phase, r);
                        }
                    }
                    Some(old) if *old != phase && phase != Phase::Pending => self.push(phase, r),
                    Some(_) => {}
                }
            }
            now.insert(r.id.clone(), phase);
        }
        self.known = now;
        self.primed = true;
    }

    /// Changes after `cursor`; `None` when some of them are no longer kept.
    fn since(&self, cursor: u64, max: usize) -> Option<Vec<Change>> {
        if cursor > self.seq {
            return None;
        }
        if cursor == self.seq {
            return Some(Vec::new());
        }
        let first = self.ring.front().map_or(self.seq + 1, |c| c.seq);
        if cursor + 1 < first {
            return None;
        }
        Some(
            self.ring
                .iter()
                .skip((cursor + 1 - first) as usize)
                .take(max)
                .cloned()
                .collect(),
        )
    }
}

/// The server's feedback watcher.
pub struct Feed {
    backend: Arc<dyn FeedbackBackend>,
    boot: String,
    seen: Mutex<Seen>,
    latest: watch::Sender<u64>,
    polling: tokio::sync::Mutex<()>,
    listeners: AtomicUsize,
    wake: Notify,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("boot", &self.boot).finish()
    }
}

impl Feed {
    /// A watcher of `backend`; call [`Feed::poll`] once before serving (it takes the store as
    /// it is without events) and [`Feed::spawn`] to keep watching.
    pub fn new(backend: Arc<dyn FeedbackBackend>) -> Arc<Feed> {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Arc::new(Feed {
            backend,
            boot: format!("{boot:x}"),
            seen: Mutex::new(Seen::default()),
            latest: watch::channel(0).0,
            polling: tokio::sync::Mutex::new(()),
            listeners: AtomicUsize::new(0),
            wake: Notify::new(),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// List the store and turn what changed into events.
    pub async fn poll(&self) {
        let _one_at_a_time = self.polling.lock().await;
        match self.backend.list(None, false).await {
            Ok(requests) => {
                let seq = {
                    let mut seen = self.seen();
                    seen.update(&requests);
                    seen.seq
                };
                self.latest.send_if_modified(|v| {
                    let changed = *v != seq;
                    *v = seq;
                    changed
                });
            }
            Err(e) => tracing::warn!("watching feedback requests: {e}"),
        }
    }

    /// Look again soon (this server just changed a request).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Keep watching while anyone listens, until `stop`.
    pub fn spawn(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        let feed = self.clone();
        tokio::spawn(async move {
            loop {
                if feed.listeners.load(Ordering::SeqCst) > 0 {
                    feed.poll().await;
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = feed.wake.notified() => {}
                        _ = stop.changed() => return,
                    }
                } else {
                    tokio::select! {
                        _ = feed.wake.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        });
    }

    /// The SSE id of change `seq`.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.boot)
    }

    /// The change number of an id given by this server run.
    pub fn seq_of(&self, id: &str) -> Option<u64> {
        let (boot, seq) = id.trim().rsplit_once('-')?;
        (boot == self.boot).then(|| seq.parse().ok()).flatten()
    }

    fn latest(&self) -> u64 {
        self.seen().seq
    }
}

/// Counts a listener while it lives (the watcher polls while there is one).
struct Listener(Arc<Feed>);

impl Listener {
    fn new(feed: Arc<Feed>) -> Listener {
        feed.listeners.fetch_add(1, Ordering::SeqCst);
        feed.wake.notify_one();
        Listener(feed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.listeners.fetch_sub(1, Ordering::SeqCst);
    }
}

fn reset(feed: &Feed, seq: u64, why: &str) -> Event {
    Event::default()
        .id(feed.id(seq))
        .event("reset")
        .data(json!({"event": "reset", "detail": why}).to_string())
}

/// `GET /api/feedback/events` (and the web pages' `/ui/feedback/events`).
pub async fn events(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "from")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|v| !v.trim().is_empty());
    let guard = streams::acquire(&s)?;
    let feed = s.feed.clone();
    let listener = Listener::new(feed.clone());
    let changes = feed.latest.subscribe();
    feed.poll().await;
    let latest = feed.latest();
    let mut queue = VecDeque::new();
    let cursor = match resume.as_deref().map(|id| feed.seq_of(id)) {
        None => latest,
        Some(Some(seq)) if seq <= latest => seq,
        Some(_) => {
            queue.push_back(reset(
                &feed,
                latest,
                "the changes after Last-Event-ID are not known to this server (it restarted, \
                 or they are too old): list /api/feedback again",
            ));
            latest
        }
    };
    let tail = FeedTail {
        feed,
        cursor,
        queue,
        changes,
        guard,
        _listener: listener,
    };
    Ok(streams::respond(tail, |mut t| async move {
        let event = t.next().await?;
        Some((event, t))
    }))
}

/// One client's place in the feed.
struct FeedTail {
    feed: Arc<Feed>,
    cursor: u64,
    queue: VecDeque<Event>,
    changes: watch::Receiver<u64>,
    guard: StreamGuard,
    _listener: Listener,
}

impl FeedTail {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.guard.stopping() {
                return None;
            }
            let since = self.feed.seen().since(self.cursor, BATCH);
            match since {
                None => {
                    let latest = self.feed.latest();
                    self.cursor = latest;
                    return Some(reset(
                        &self.feed,
                        latest,
                        "this stream fell behind and missed changes: list /api/feedback again",
                    ));
                }
                Some(changes) if !changes.is_empty() => {
                    for c in changes {
                        self.cursor = c.seq;
                        self.queue.push_back(
                            Event::default()
                                .id(self.feed.id(c.seq))
                                .event(c.name)
                                .data(c.data),
                        );
                    }
                }
                Some(_) => {
                    let changes = &mut self.changes;
                    match self.guard.until(changes.changed()).await {
                        Some(Ok(())) => {}
                        _ => return None,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graflow_engine::hitl::{FeedbackKind, FeedbackSpec};

    fn request(id: &str, status: FeedbackStatus, timed_out: bool) -> FeedbackRequest {
        FeedbackRequest {
            id: id.into(),
            run_id: "r".into(),
            task: "t".into(),
            workflow: "w".into(),
            spec: FeedbackSpec::new(FeedbackKind::Text, "?"),
            status,
            created_at: "2026-01-01T00:00:00Z".into(),
            timed_out_at: timed_out.then(|| "2026-01-01T00:00:01Z".into()),
            checkpoint: None,
        }
    }

    #[test]
    fn changes_become_events_after_the_first_look() {
        let mut seen = Seen::default();
        seen.update(&[request("a", FeedbackStatus::Pending, false)]);
        assert_eq!(seen.seq, 0, "the store as found is no change");
        seen.update(&[
            request("a", FeedbackStatus::Pending, true),
            request("b", FeedbackStatus::Answered, false),
        ]);
        let names: Vec<_> = seen.since(0, 10).unwrap().iter().map(|c| c.name).collect();
        assert_eq!(names, ["expired", "requested", "answered"]);
        seen.update(&[request("a", FeedbackStatus::Cancelled, true)]);
        let after = seen.since(3, 10).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].name, "cancelled");
        assert_eq!(after[0].seq, 4);
        assert!(seen.since(4, 10).unwrap().is_empty());
        assert!(seen.since(5, 10).is_none(), "an id from the future");
    }

    #[test]
    fn the_ring_is_bounded_and_says_when_changes_are_gone() {
        let mut seen = Seen::default();
        seen.update(&[]);
        for i in 0..(RING + 10) {
            seen.update(&[request(&format!("r{i}"), FeedbackStatus::Pending, false)]);
        }
        assert_eq!(seen.ring.len(), RING);
        assert!(seen.since(0, 10).is_none());
        assert_eq!(seen.since(10, 5).unwrap()[0].seq, 11);
    }
}
