//! Task definitions: an id, a handler that runs the body, and options (retries, timeout,
//! cycle limit, queue, environment).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::context::TaskContext;
use crate::handler::{FnHandler, TaskError, TaskHandler};
use crate::pool::RateLimit;

/// When and how often a failed task is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retry).
    pub max_retries: u32,
    /// Delay before the first retry.
    pub backoff: Duration,
    /// Each further retry waits `factor` times longer.
    pub factor: f64,
    /// Upper bound of a delay.
    pub max_backoff: Duration,
    /// Multiply each delay by a random factor in [0.5, 1.5] (then cap again).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 0,
            backoff: Duration::from_secs(1),
            factor: 2.0,
            max_backoff: Duration::from_secs(60),
            jitter: false,
        }
    }
}

impl RetryPolicy {
    /// `max` retries with the default backoff (1 s, ×2, at most 60 s, no jitter).
    pub fn retries(max: u32) -> Self {
        RetryPolicy {
            max_retries: max,
            ..RetryPolicy::default()
        }
    }

    /// Set the first delay.
    pub fn backoff(mut self, d: Duration) -> Self {
        self.backoff = d;
        self
    }

    /// Set the growth factor.
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }

    /// Set the delay cap.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Turn jitter on or off.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The delay before retry `k` (0 for the first retry): `min(backoff × factor^k, max)`,
    /// with jitter a uniform factor in [0.5, 1.5] applied before capping again.
    pub fn delay(&self, k: u32, unit_random: f64) -> Duration {
        let cap = self.max_backoff.as_secs_f64();
        let mut secs = (self.backoff.as_secs_f64() * self.factor.powi(k as i32)).min(cap);
        if self.jitter {
            secs = (secs * (0.5 + unit_random)).min(cap);
        }
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(self.max_backoff)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(format!(
                "retry factor must be at least 1.0, got {}",
                self.factor
            ));
        }
        if self.max_backoff < self.backoff {
            return Err(format!(
                "max_backoff ({:?}) is shorter than backoff ({:?})",
                self.max_backoff, self.backoff
            ));
        }
        Ok(())
    }
}

/// Options every task kind shares.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// Retry policy (none by default).
    pub retry: RetryPolicy,
    /// Per-attempt time limit.
    pub timeout: Option<Duration>,
    /// Cycle limit overriding the workflow's.
    pub max_cycles: Option<u32>,
    /// Worker queue that runs this task in distributed mode.
    pub queue: Option<String>,
    /// Extra environment for process-based handlers.
    pub env: BTreeMap<String, String>,
    /// Working directory for process-based handlers.
    pub cwd: Option<PathBuf>,
    /// The pool whose slots the task holds while it runs.
    pub pool: Option<String>,
    /// How many of its pool's slots it holds (1 when not given).
    pub slots: Option<u32>,
    /// How often this task may start (all its executions together).
    pub rate_limit: Option<RateLimit>,
}

/// A task: id, handler and options.
#[derive(Clone)]
pub struct TaskDef {
    id: Arc<str>,
    handler: Arc<dyn TaskHandler>,
    /// The task's options.
    pub options: TaskOptions,
    /// A serializable description that can build this task again (a task of the workflow
    /// file format, as JSON), so a task added at run time survives a checkpoint.
    pub spec: Option<serde_json::Value>,
    /// The name its handler is registered under on the workers of a fleet, so the task can
    /// run there (a Rust closure without one always runs in the coordinator).
    pub remote_name: Option<Arc<str>>,
}

impl std::fmt::Debug for TaskDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskDef")
            .field("id", &self.id)
            .field("kind", &self.handler.kind())
            .field("options", &self.options)
            .finish()
    }
}

impl TaskDef {
    /// A task run by `handler`.
    pub fn new(id: impl Into<Arc<str>>, handler: Arc<dyn TaskHandler>) -> Self {
        TaskDef {
            id: id.into(),
            handler,
            options: TaskOptions::default(),
            spec: None,
            remote_name: None,
        }
    }

    /// A task whose body is an async closure.
    pub fn from_fn<F, Fut, R, E>(id: impl Into<Arc<str>>, body: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + 'static,
        E: Into<TaskError> + 'static,
    {
        TaskDef::new(id, Arc::new(FnHandler::new(body)))
    }

    /// The task's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// The handler that runs the body.
    pub fn handler(&self) -> &Arc<dyn TaskHandler> {
        &self.handler
    }

    /// Set the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = policy;
        self
    }

    /// Set the per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.options.timeout = Some(d);
        self
    }

    /// Set the cycle limit.
    pub fn max_cycles(mut self, n: u32) -> Self {
        self.options.max_cycles = Some(n);
        self
    }

    /// Attach the description that rebuilds this task after a checkpoint.
    pub fn with_spec(mut self, spec: serde_json::Value) -> Self {
        self.spec = Some(spec);
        self
    }

    /// Let the task run on a worker fleet whose workers registered its handler as `name`
    /// (see `distributed::TaskRegistry`).
    pub fn remote_as(mut self, name: impl Into<Arc<str>>) -> Self {
        self.remote_name = Some(name.into());
        self
    }

    /// Set the worker queue.
    pub fn queue(mut self, q: impl Into<String>) -> Self {
        self.options.queue = Some(q.into());
        self
    }

    /// Hold `slots` slots of `pool` while running (the pool must be defined in the workflow).
    pub fn pool(mut self, pool: impl Into<String>, slots: u32) -> Self {
        self.options.pool = Some(pool.into());
        self.options.slots = Some(slots);
        self
    }

    /// Start at most at this rate.
    pub fn rate_limit(mut self, rate: RateLimit) -> Self {
        self.options.rate_limit = Some(rate);
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        self.options.retry.check()?;
        if self.options.slots == Some(0) {
            return Err("slots must be at least 1".into());
        }
        if self.options.slots.is_some() && self.options.pool.is_none() {
            return Err("slots needs a pool: add `pool: \"name\"`".into());
        }
        if self.options.max_cycles == Some(0) {
            return Err("max_cycles must be at least 1".into());
        }
        if self.options.timeout == Some(Duration::ZERO) {
            return Err("timeout must be longer than zero".into());
        }
        Ok(())
    }
}
