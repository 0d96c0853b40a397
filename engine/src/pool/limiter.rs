//! A run's slots and buckets, and admitting a task: wait for its pool's slots, then for a
//! token of each bucket that applies (the task's, its pool's, its queue's). Slots are tokio
//! semaphore permits held by the [`Admission`]: dropping it (success, failure, timeout,
//! cancellation, a panic unwinding) gives them back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::bucket::TokenBucket;
use super::{PoolDef, QueueDef};
use crate::workflow::TaskOptions;

/// Why a task waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Its pool has too few free slots.
    PoolSlots,
    /// A rate limit (the task's, its pool's or its queue's) or an API's `Retry-After` holds it.
    RateLimit,
}

impl WaitReason {
    /// The name used in the `task_waiting` event: `pool_slots` or `rate_limit`.
    pub fn name(self) -> &'static str {
        match self {
            WaitReason::PoolSlots => "pool_slots",
            WaitReason::RateLimit => "rate_limit",
        }
    }
}

/// A wait about to begin.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// Why.
    pub reason: WaitReason,
    /// The pool concerned, if a pool is.
    pub pool: Option<Arc<str>>,
    /// A sentence for people: which limit, how long when known.
    pub detail: String,
}

/// A pool's slots and its bucket.
#[derive(Debug)]
struct PoolState {
    size: u32,
    slots: Arc<Semaphore>,
    bucket: TokenBucket,
    waiting: AtomicUsize,
}

/// How a pool is doing, for views.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    /// The pool's name.
    pub name: Arc<str>,
    /// Its slots.
    pub size: u32,
    /// Slots taken now.
    pub in_use: u32,
    /// Tasks waiting for slots now.
    pub waiting: usize,
    /// Its bucket's steady rate, as written.
    pub rate: Option<String>,
}

/// The slots and buckets of one run.
#[derive(Debug, Default)]
pub struct Limiter {
    pools: BTreeMap<Arc<str>, PoolState>,
    queues: FxHashMap<String, TokenBucket>,
    /// Buckets of tasks with their own rate limit (or held by a `Retry-After`), made when
    /// first needed.
    tasks: Mutex<FxHashMap<Arc<str>, Arc<TokenBucket>>>,
}

/// What an admitted task holds while it runs: its pool's slots, given back on drop.
#[derive(Default)]
pub struct Admission {
    permit: Option<OwnedSemaphorePermit>,
    /// Slots held elsewhere (in the fleet's Redis), given back when dropped.
    remote: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("slots", &self.slots())
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

impl Admission {
    /// An admission holding `guard` (slots held elsewhere, given back when it drops).
    pub fn holding(guard: Option<Box<dyn std::any::Any + Send + Sync>>) -> Self {
        Admission {
            permit: None,
            remote: guard,
        }
    }

    /// Slots held.
    pub fn slots(&self) -> u32 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u32)
    }
}

/// Counts a task as waiting for slots while alive.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Limiter {
    /// The limiter of a workflow with these pools and queues.
    pub fn new(pools: &BTreeMap<String, PoolDef>, queues: &BTreeMap<String, QueueDef>) -> Self {
        Limiter {
            pools: pools
                .iter()
                .map(|(name, def)| {
                    let state = PoolState {
                        size: def.slots,
                        slots: Arc::new(Semaphore::new(def.slots as usize)),
                        bucket: TokenBucket::new(def.rate_limit),
                        waiting: AtomicUsize::new(0),
                    };
                    (Arc::from(name.as_str()), state)
                })
                .collect(),
            queues: queues
                .iter()
                .filter_map(|(name, def)| {
                    def.rate_limit
                        .map(|r| (name.clone(), TokenBucket::new(Some(r))))
                })
                .collect(),
            tasks: Mutex::new(FxHashMap::default()),
        }
    }

    /// Whether a task with these options may have to wait (has a pool, a rate limit or a
    /// rate-limited queue, or was held by an API). Cheap: most tasks have none.
    pub fn applies(&self, task: &str, options: &TaskOptions) -> bool {
        options.pool.is_some()
            || options.rate_limit.is_some()
            || options
                .queue
                .as_ref()
                .is_some_and(|q| self.queues.contains_key(q))
            || self.tasks.lock().contains_key(task)
    }

    /// Wait until `task` may start: slots of its pool first, then a token of each bucket.
    /// `on_wait` is told before each wait. Dropping the future gives back what it took.
    pub async fn admit(
        &self,
        task: &str,
        options: &TaskOptions,
        mut on_wait: impl FnMut(Wait),
    ) -> Admission {
        let mut admission = Admission::default();
        let pool = options
            .pool
            .as_deref()
            .and_then(|p| self.pools.get_key_value(p));
        if let Some((name, state)) = pool {
            let want = options.slots.unwrap_or(1).min(state.size);
            let permit = match state.slots.clone().try_acquire_many_owned(want) {
                Ok(permit) => permit,
                Err(_) => {
                    state.waiting.fetch_add(1, Ordering::Relaxed);
                    let _waiting = Waiting(&state.waiting);
                    on_wait(Wait {
                        reason: WaitReason::PoolSlots,
                        pool: Some(name.clone()),
                        detail: format!(
                            "pool '{name}': {} of {} slots in use, {want} needed",
                            (state.size as usize).saturating_sub(state.slots.available_permits()),
                            state.size
                        ),
                    });
                    // The semaphore is never closed.
                    match state.slots.clone().acquire_many_owned(want).await {
                        Ok(permit) => permit,
                        Err(_) => return admission,
                    }
                }
            };
            admission.permit = Some(permit);
        }
        let own = self.task_bucket(task, options);
        let mut buckets: Vec<(&TokenBucket, Option<&Arc<str>>, String)> = Vec::with_capacity(3);
        if let Some(b) = &own {
            buckets.push((b, None, format!("rate limit of task '{task}'")));
        }
        if let Some((name, state)) = pool {
            buckets.push((
                &state.bucket,
                Some(name),
                format!("rate limit of pool '{name}'"),
            ));
        }
        if let Some((q, b)) = options
            .queue
            .as_ref()
            .and_then(|q| self.queues.get_key_value(q))
        {
            buckets.push((b, None, format!("rate limit of queue '{q}'")));
        }
        for (bucket, pool, what) in buckets {
            let wait = bucket.reserve();
            if wait.is_zero() {
                continue;
            }
            let rate = bucket.rate().map(|r| format!(" ({r})")).unwrap_or_default();
            on_wait(Wait {
                reason: WaitReason::RateLimit,
                pool: pool.cloned(),
                detail: format!(
                    "{what}{rate}: next start in {}",
                    humantime::format_duration(round_ms(wait))
                ),
            });
            tokio::time::sleep(wait).await;
        }
        admission
    }

    /// An API asked to be left alone for `delay` (`Retry-After`): hold the bucket of the
    /// task's pool, or the task's own bucket when it has no pool.
    pub fn hold(&self, task: &Arc<str>, options: &TaskOptions, delay: Duration) {
        if let Some(state) = options.pool.as_deref().and_then(|p| self.pools.get(p)) {
            state.bucket.hold_for(delay);
            return;
        }
        self.tasks
            .lock()
            .entry(task.clone())
            .or_insert_with(|| Arc::new(TokenBucket::new(options.rate_limit)))
            .hold_for(delay);
    }

    /// The task's own bucket: made on first use when it has a rate limit, or present since an
    /// API held it.
    fn task_bucket(&self, task: &str, options: &TaskOptions) -> Option<Arc<TokenBucket>> {
        let mut tasks = self.tasks.lock();
        if let Some(b) = tasks.get(task) {
            return Some(b.clone());
        }
        let rate = options.rate_limit?;
        let bucket = Arc::new(TokenBucket::new(Some(rate)));
        tasks.insert(Arc::from(task), bucket.clone());
        Some(bucket)
    }

    /// Every pool's state, by name.
    pub fn pools(&self) -> Vec<PoolStatus> {
        self.pools
            .iter()
            .map(|(name, s)| PoolStatus {
                name: name.clone(),
                size: s.size,
                in_use: s.size - s.slots.available_permits().min(s.size as usize) as u32,
                waiting: s.waiting.load(Ordering::Relaxed),
                rate: s.bucket.rate().map(|r| r.to_string()),
            })
            .collect()
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}
