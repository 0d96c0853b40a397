//! A worker of the fleet: reads attempts from its queues (never more than its free slots),
//! runs them, keeps their leases alive, commits each outcome fenced by its epoch, reaps
//! entries of lost workers, and drains on shutdown (in-flight attempts finish within a grace
//! period or are handed back at once).

mod access;
mod acks;
mod execute;
mod failpoint;
mod outbox;
mod recording;
mod upkeep;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::RedisError;
use redis::streams::StreamReadReply;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::dispatch::FleetError;
use crate::file::LoadedWorkflow;
use crate::handler::Runtimes;

use super::config::FleetConfig;
use super::conn::Link;
use super::coordinator::ensure_group;
use super::keys::{self, Keys};
use super::metrics::{WorkerMetrics, WorkerRecord};
use super::registry::TaskRegistry;

pub use execute::StopReason;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The fleet (URL and key prefix must match the coordinators').
    pub fleet: FleetConfig,
    /// The queues to read (`default` when empty).
    pub queues: Vec<String>,
    /// Attempts run at once.
    pub concurrency: NonZeroUsize,
    /// An attempt's lease: renewed while it runs; when a worker stops renewing, another
    /// worker takes the attempt over after this long.
    pub lease: Duration,
    /// Deliveries of one attempt before it is dead-lettered.
    pub max_deliveries: u32,
    /// How long a shutdown waits for running attempts before handing them back.
    pub grace: Duration,
    /// Typed values the tasks this worker runs read with
    /// [`TaskContext::state`](crate::TaskContext::state) (the coordinator's
    /// [`RunOptions::state`](crate::RunOptions::state) stays in its process).
    pub state: crate::shared_state::SharedState,
}

impl WorkerConfig {
    /// Defaults for `fleet`: the `default` queue, 8 slots, a 30 s lease, 5 deliveries, 30 s
    /// of grace.
    pub fn new(fleet: FleetConfig) -> Self {
        WorkerConfig {
            fleet,
            queues: vec![keys::DEFAULT_QUEUE.to_string()],
            concurrency: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
            lease: Duration::from_secs(30),
            max_deliveries: 5,
            grace: Duration::from_secs(30),
            state: crate::shared_state::SharedState::new(),
        }
    }

    /// Give the tasks this worker runs `value`, read with
    /// [`ctx.state::<T>()`](crate::TaskContext::state).
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// How often leases are renewed and cancellations noticed: a third of the lease, at most
    /// one second.
    pub fn heartbeat(&self) -> Duration {
        (self.lease / 3).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// A workflow being loaded or loaded.
pub(crate) type WorkflowCell = Arc<tokio::sync::OnceCell<Result<Arc<LoadedWorkflow>, String>>>;

/// An attempt this worker is running.
pub(crate) struct InFlight {
    pub run: String,
    pub tid: String,
    pub stream: String,
    pub entry: String,
    pub epoch: u64,
    pub stop: CancellationToken,
    pub reason: Mutex<Option<StopReason>>,
    pub extended: Mutex<Instant>,
}

/// What the worker's parts share.
pub(crate) struct WorkerInner {
    pub id: String,
    pub host: String,
    pub link: Link,
    pub keys: Keys,
    pub config: WorkerConfig,
    pub registry: TaskRegistry,
    pub runtimes: Runtimes,
    /// Workflows by hash, each loaded once (attempts arriving during the load wait for it).
    pub workflows: Mutex<HashMap<String, WorkflowCell>>,
    pub inflight: Mutex<HashMap<String, Arc<InFlight>>>,
    pub slots: Arc<Semaphore>,
    pub metrics: WorkerMetrics,
    pub outbox: Arc<outbox::Outbox>,
    pub acks: Arc<acks::Acks>,
    /// Redis outages, told once each.
    pub outage: super::conn::Outage,
    pub sync_conn: Mutex<Option<super::conn::SyncConn>>,
    /// Cancelled to stop reading queues.
    pub fetching: CancellationToken,
    pub draining: AtomicBool,
}

/// A worker of the fleet.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<WorkerInner>,
}

/// How a worker's run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerReport {
    /// Attempts run to an outcome.
    pub processed: u64,
    /// Attempts handed back to the queue because the grace period ran out.
    pub released: u64,
}

impl Worker {
    /// Connect, register and make sure the queues exist. `registry` holds the Rust handlers
    /// of tasks made with [`TaskRegistry::task`]; `runtimes` run the file task kinds.
    pub async fn start(
        config: WorkerConfig,
        registry: TaskRegistry,
        runtimes: Runtimes,
    ) -> Result<Worker, FleetError> {
        let link = Link::connect(&config.fleet.url, config.fleet.connect_wait).await?;
        let keys = Keys::new(config.fleet.prefix.clone());
        let mut config = config;
        if config.queues.is_empty() {
            config.queues.push(keys::DEFAULT_QUEUE.to_string());
        }
        for q in &config.queues {
            ensure_group(&link, &keys.queue(q).stream())
                .await
                .map_err(|e| {
                    FleetError::Store(format!(
                        "creating queue '{q}' on Redis at {}: {e}",
                        link.address()
                    ))
                })?;
        }
        let slots = Arc::new(Semaphore::new(config.concurrency.get()));
        let inner = Arc::new(WorkerInner {
            id: super::process_id("worker"),
            host: super::host_name(),
            link: link.clone(),
            keys,
            config,
            registry,
            runtimes,
            workflows: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            slots,
            metrics: WorkerMetrics::default(),
            outbox: outbox::Outbox::new(),
            acks: acks::Acks::new(),
            outage: super::conn::Outage::default(),
            sync_conn: Mutex::new(None),
            fetching: CancellationToken::new(),
            draining: AtomicBool::new(false),
        });
        tokio::spawn(inner.outbox.clone().run(link.clone()));
        tokio::spawn(inner.acks.clone().run(link));
        upkeep::beat(&inner).await;
        Ok(Worker { inner })
    }

    /// This worker's id (new on every start: host, process id and a random part).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The metrics as Prometheus text.
    pub fn prometheus(&self) -> String {
        self.inner
            .metrics
            .prometheus(&self.inner.id, self.inner.config.concurrency.get())
    }

    /// The worker's current record (as kept in Redis).
    pub fn record(&self) -> WorkerRecord {
        upkeep::record(&self.inner)
    }

    /// Run until `shutdown` completes, then drain: stop reading, let running attempts finish
    /// within the grace period, hand the rest back to their queues, and deregister.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> WorkerReport {
        let inner = &self.inner;
        let mut parts = tokio::task::JoinSet::new();
        for q in &inner.config.queues {
            parts.spawn(fetch(inner.clone(), inner.keys.queue(q).stream()));
        }
        let upkeep = tokio::spawn(upkeep::run(inner.clone()));
        shutdown.await;
        inner.draining.store(true, Ordering::Release);
        inner.fetching.cancel();
        while parts.join_next().await.is_some() {}
        let busy = inner.inflight.lock().len();
        if busy > 0 {
            tracing::info!(
                "worker {}: draining {busy} running attempts (up to {:.0} s)",
                inner.id,
                inner.config.grace.as_secs_f64()
            );
        }
        let all = inner.config.concurrency.get() as u32;
        let drained = tokio::time::timeout(
            inner.config.grace,
            inner.slots.clone().acquire_many_owned(all),
        )
        .await;
        let mut released = 0;
        if drained.is_err() {
            let left: Vec<Arc<InFlight>> = inner.inflight.lock().values().cloned().collect();
            released = left.len() as u64;
            for f in &left {
                *f.reason.lock() = Some(StopReason::Shutdown);
                f.stop.cancel();
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                inner.slots.clone().acquire_many_owned(all),
            )
            .await;
        }
        upkeep.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), inner.acks.flushed()).await;
        upkeep::deregister(inner).await;
        WorkerReport {
            processed: inner.metrics.processed.load(Ordering::Relaxed),
            released,
        }
    }
}

/// Read one queue: wait for a free slot, then take at most as many entries as there are free
/// slots; each entry runs in its own task holding one slot.
async fn fetch(inner: Arc<WorkerInner>, stream: String) {
    let mut delay = Duration::from_millis(50);
    'connect: loop {
        let mut conn = tokio::select! {
            _ = inner.fetching.cancelled() => return,
            c = inner.link.blocking() => match c {
                Ok(c) => c,
                Err(e) => {
                    warn_unless_transient(&inner, &e);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue 'connect;
                }
            },
        };
        loop {
            let first = tokio::select! {
                _ = inner.fetching.cancelled() => return,
                p = inner.slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let mut permits = vec![first];
            while permits.len() < inner.config.concurrency.get() {
                match inner.slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(keys::GROUP)
                .arg(&inner.id)
                .arg("COUNT")
                .arg(permits.len())
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&stream)
                .arg(">");
            let read: Result<Option<StreamReadReply>, RedisError> = tokio::select! {
                _ = inner.fetching.cancelled() => return,
                r = cmd.query_async(&mut conn) => r,
            };
            if read.is_ok() {
                inner
                    .outage
                    .recovered(&format!("worker {}", inner.id), &inner.link);
            }
            match read {
                Ok(Some(reply)) => {
                    delay = Duration::from_millis(50);
                    for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                        let Some(permit) = permits.pop() else {
                            break;
                        };
                        let run: Option<String> = entry.get("run");
                        let tid: Option<String> = entry.get("tid");
                        let (Some(run), Some(tid)) = (run, tid) else {
                            tracing::warn!(
                                "queue {stream}: entry {} is malformed; dropped",
                                entry.id
                            );
                            execute::ack(&inner, &stream, &entry.id);
                            continue;
                        };
                        let inner = inner.clone();
                        let stream = stream.clone();
                        tokio::spawn(async move {
                            execute::process(&inner, stream, entry.id, run, tid).await;
                            drop(permit);
                        });
                    }
                }
                Ok(None) => {}
                Err(e) if e.code() == Some("NOGROUP") => {
                    // Redis lost the queue (restarted without its data): make it again.
                    if let Err(e) = ensure_group(&inner.link, &stream).await {
                        warn_unless_transient(&inner, &e);
                    }
                }
                Err(e) => {
                    warn_unless_transient(&inner, &e);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue 'connect;
                }
            }
        }
    }
}

fn warn_unless_transient(inner: &WorkerInner, e: &RedisError) {
    inner
        .outage
        .failed(&format!("worker {}", inner.id), &inner.link, e);
}
