//! The coordinator's side of the fleet: [`RedisFleet`] implements the engine's
//! [`Fleet`]. For each run it holds a lease (with a fencing epoch) on the run, mirrors results
//! for the workers, sends attempts to queues, reads what workers report (outcomes, log lines,
//! feedback requests) from the run's outbox stream, and replays each outcome's control calls
//! into the coordinator's task context, so scheduling happens exactly as in a local run.
//!
//! Parts: `run` (one run: sending attempts, applying outcomes, closing), `inbox` (what
//! workers report: outcomes, log lines, feedback requests), `lease` (the coordinator's
//! lease, settling a resumed run, reconciling after Redis was away, sweeps), `mirror`
//! (results and added tasks for the workers).

mod inbox;
mod lease;
mod mirror;
mod run;

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use redis::RedisError;
use serde_json::Value;

use crate::channel::Channel;
use crate::checkpoint::WorkflowSource;
use crate::context::TaskContext;
use crate::dispatch::{Fleet, FleetRun, FleetRunInfo};
use crate::events::RunStatus;
use crate::handler::{TaskHandler, TaskResult};
use crate::run::TaskFactory;
use crate::workflow::TaskDef;

use crate::distributed::channel::RedisChannel;
use crate::distributed::config::FleetConfig;
use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::{self, Keys};
use crate::distributed::wire::{Body, Bundle};

use crate::dispatch::FleetError;
use mirror::MirrorOp;
use run::RunInner;

/// The coordinator's connection to a Redis fleet. Cheap to clone.
#[derive(Clone)]
pub struct RedisFleet {
    link: Link,
    keys: Keys,
    config: FleetConfig,
    /// The workflow file whose tasks travel by hash, and the factory that rebuilds tasks
    /// added at run time from their specs.
    source: Option<(WorkflowSource, Arc<dyn TaskFactory>)>,
    /// This process as a coordinator.
    id: Arc<str>,
}

impl RedisFleet {
    /// Connect to the fleet's Redis (waiting up to `config.connect_wait` for it).
    pub async fn connect(config: FleetConfig) -> Result<RedisFleet, FleetError> {
        let link = Link::connect(&config.url, config.connect_wait).await?;
        Ok(RedisFleet {
            link,
            keys: Keys::new(config.prefix.clone()),
            config,
            source: None,
            id: Arc::from(super::process_id("coordinator")),
        })
    }

    /// Ship the tasks of this workflow file by its hash; `factory` rebuilds the tasks workers
    /// add at run time.
    pub fn with_workflow(mut self, source: WorkflowSource, factory: Arc<dyn TaskFactory>) -> Self {
        self.source = Some((source, factory));
        self
    }

    /// The Redis connection.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

impl Fleet for RedisFleet {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn channel(&self, run_id: &str) -> Channel {
        Channel::from_backend(Arc::new(RedisChannel::new(
            self.link.clone(),
            self.keys.run(run_id),
        )))
    }

    fn open_run(
        &self,
        info: FleetRunInfo,
    ) -> BoxFuture<'static, Result<Arc<dyn FleetRun>, FleetError>> {
        let fleet = self.clone();
        async move {
            let run = RunInner::open(fleet, info).await?;
            Ok(Arc::new(RedisRun { inner: run }) as Arc<dyn FleetRun>)
        }
        .boxed()
    }
}

/// The fleet side of one run.
struct RedisRun {
    inner: Arc<RunInner>,
}

impl FleetRun for RedisRun {
    fn remote_handler(&self, def: &Arc<TaskDef>) -> Option<Arc<dyn TaskHandler>> {
        let body = self.inner.body_of(def)?;
        Some(Arc::new(RemoteHandler {
            run: self.inner.clone(),
            def: def.clone(),
            body,
        }))
    }

    fn result_recorded(&self, task: &str, value: &Value) {
        self.inner
            .mirror
            .push(MirrorOp::Result(task.to_string(), value.clone()));
    }

    fn task_added(&self, task: &str) {
        self.inner.mirror.push(MirrorOp::Added(task.to_string()));
    }

    fn close(&self, status: RunStatus) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        async move { inner.close(status).await }.boxed()
    }

    fn admit_here(
        &self,
        def: &Arc<TaskDef>,
        holder: String,
        on_wait: Box<dyn FnMut(crate::pool::Wait) + Send>,
    ) -> Option<BoxFuture<'static, Result<crate::pool::Admission, FleetError>>> {
        let limits = crate::distributed::pools::claims(&self.inner.workflow, def);
        if limits.is_empty() {
            return None;
        }
        let inner = self.inner.clone();
        Some(
            async move {
                let fleet = &inner.fleet;
                let held = crate::distributed::pools::admit(
                    &fleet.link,
                    &fleet.keys,
                    &limits,
                    &format!("{}:{holder}", fleet.id),
                    fleet.config.lease,
                    on_wait,
                )
                .await
                .map_err(|e| {
                    FleetError::Store(format!(
                        "taking pool slots or rate-limit tokens in Redis: {e}"
                    ))
                })?;
                Ok(crate::pool::Admission::holding(held.map(|h| {
                    Box::new(h) as Box<dyn std::any::Any + Send + Sync>
                })))
            }
            .boxed(),
        )
    }

    fn starts_when_admitted(&self, def: &Arc<TaskDef>) -> bool {
        !crate::distributed::pools::claims(&self.inner.workflow, def).is_empty()
    }

    fn hold_here(
        &self,
        def: &Arc<TaskDef>,
        delay: std::time::Duration,
    ) -> Option<BoxFuture<'static, ()>> {
        let limits = crate::distributed::pools::claims(&self.inner.workflow, def);
        let task_bucket = format!("task:{}:{}", self.inner.workflow.name(), def.id());
        let inner = self.inner.clone();
        Some(
            async move {
                let fleet = &inner.fleet;
                let held = crate::distributed::pools::hold(
                    &fleet.link,
                    &fleet.keys,
                    &limits,
                    &task_bucket,
                    delay,
                )
                .await;
                if let Err(e) = held {
                    tracing::warn!("holding the pool's bucket in Redis: {e}");
                }
            }
            .boxed(),
        )
    }
}

/// Runs one task attempt on the fleet.
struct RemoteHandler {
    run: Arc<RunInner>,
    def: Arc<TaskDef>,
    body: Body,
}

impl TaskHandler for RemoteHandler {
    fn kind(&self) -> &'static str {
        "fleet"
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        self.run
            .clone()
            .execute(self.def.clone(), self.body.clone(), ctx)
            .boxed()
    }
}

/// Store the workflow text under its hash for workers (kept for the retention time).
pub(super) async fn store_bundle(
    fleet: &RedisFleet,
    source: &WorkflowSource,
) -> Result<String, String> {
    let text = source
        .source
        .clone()
        .ok_or("the workflow's text is not known, so workers cannot load it")?;
    let hash = source
        .hash
        .clone()
        .unwrap_or_else(|| crate::file::sha256_hex(&text));
    let bundle = Bundle {
        name: source.name.clone(),
        path: source.path.clone().unwrap_or_default(),
        text,
    };
    let json = serde_json::to_string(&bundle).map_err(|e| e.to_string())?;
    let key = fleet.keys.workflow(&hash);
    let secs = fleet.config.retention.as_secs().max(60);
    retry(
        &fleet.link,
        "storing the workflow",
        Some(fleet.config.connect_wait),
        |mut c| {
            let (key, json) = (key.clone(), json.clone());
            async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(json)
                    .arg("EX")
                    .arg(secs)
                    .query_async::<()>(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "storing the workflow on Redis at {}: {e}",
            fleet.link.address()
        )
    })?;
    Ok(hash)
}

/// Create `stream` and its consumer group if needed, reading from its start so entries added
/// before any worker came are delivered.
pub(crate) async fn ensure_group(link: &Link, stream: &str) -> Result<(), RedisError> {
    let result: Result<(), RedisError> = retry(
        link,
        "creating a consumer group",
        None,
        |mut c| async move {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(keys::GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<()>(&mut c)
                .await
        },
    )
    .await;
    match result {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}
