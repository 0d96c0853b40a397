//! The one-line switch to the worker fleet, shared by `graflow run` and `graflow resume`:
//! `--backend redis://…` (or `GRAFLOW_BACKEND`), else the file's `backend: Redis(url: …)` or a
//! group's. With a fleet, parallel groups (unless a group says `backend: Local`) and tasks
//! with a `queue` run on `graflow worker`s, and the run's channel lives in Redis.

use std::sync::Arc;

use clap::Args;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::watch::{self, RedisEventSink, SinkConfig};
use graflow_engine::distributed::{
    FleetConfig, RedisCheckpoints, RedisFeedback, RedisFleet, is_redis_url,
};
use graflow_engine::file::LoadedWorkflow;
use graflow_engine::file::spec::{BackendSpec, ChannelSpec};
use graflow_engine::handler::Runtimes;
use graflow_engine::{RunHandle, RunOptions};
use tokio::task::JoinHandle;

use super::style::Style;

/// Where a run's parallel groups run.
#[derive(Debug, Args, Default, Clone)]
pub struct BackendArgs {
    /// Run parallel groups and tasks with a `queue` on a Redis worker fleet
    /// (`redis://host:port[/db]`, `redis+cluster://host:port,host:port`; `local` forces a local run) [env: GRAFLOW_BACKEND].
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
}

/// The backend a run uses.
struct Choice {
    url: String,
    /// Groups without their own `backend:` go to the fleet.
    groups: bool,
}

impl BackendArgs {
    /// The URL asked for by the flag, else by `GRAFLOW_BACKEND`; `Some("")` for `local`.
    fn asked(&self) -> Option<String> {
        let asked = self
            .backend
            .clone()
            .or_else(|| std::env::var("GRAFLOW_BACKEND").ok())?;
        let asked = asked.trim().to_string();
        Some(if asked.eq_ignore_ascii_case("local") {
            String::new()
        } else {
            asked
        })
    }

    fn choose(&self, loaded: &LoadedWorkflow) -> Option<Choice> {
        let spec = &loaded.spec;
        match self.asked() {
            Some(url) if url.is_empty() => None,
            Some(url) => Some(Choice { url, groups: true }),
            None => {
                if let Some(BackendSpec::Redis { url }) = &spec.backend {
                    return Some(Choice {
                        url: url.clone(),
                        groups: true,
                    });
                }
                let group_url = spec.groups.values().find_map(|g| match &g.backend {
                    Some(BackendSpec::Redis { url }) => Some(url.clone()),
                    _ => None,
                });
                let channel_url = match &spec.channel {
                    Some(ChannelSpec::Redis { url }) => Some(url.clone()),
                    _ => None,
                };
                group_url
                    .or(channel_url)
                    .map(|url| Choice { url, groups: false })
            }
        }
    }

    /// Connect `options` to the fleet this run uses, if any: its groups, its channel, its
    /// event stream in Redis. `Err` holds the message for a bad URL or an unreachable Redis.
    pub async fn apply(
        &self,
        loaded: &LoadedWorkflow,
        runtimes: &Runtimes,
        options: &mut RunOptions,
        err: &Style,
    ) -> Result<Option<FleetWatch>, String> {
        let Some(choice) = self.choose(loaded) else {
            return Ok(None);
        };
        if !is_redis_url(&choice.url) {
            return Err(format!(
                "--backend {}: expected redis://host:port[/db], redis+cluster://host:port,host:port or `local`",
                choice.url
            ));
        }
        let fleet = RedisFleet::connect(FleetConfig::new(&choice.url))
            .await?
            .with_workflow(loaded.source(), Arc::new(loaded.task_factory(runtimes)));
        if matches!(loaded.spec.channel, Some(ChannelSpec::Memory)) {
            eprintln!(
                "{}",
                err.warning(
                    "note: `channel: Memory` is not used on the fleet: workers share the run's channel in Redis"
                )
            );
        }
        let config = FleetConfig::new(&choice.url);
        let sink = RedisEventSink::start(
            fleet.link().clone(),
            fleet.keys().clone(),
            SinkConfig {
                retention: config.retention,
                workflow_hash: Some(loaded.source().hash.unwrap_or_default())
                    .filter(|h| !h.is_empty()),
                ..SinkConfig::default()
            },
        );
        // Feedback requests live in the fleet's Redis too: an answer from any machine wakes
        // the task waiting for it.
        if let Some(manager) = options.feedback.as_ref() {
            let mut manager = (**manager).clone();
            manager.backend = Arc::new(RedisFeedback::new(
                fleet.link().clone(),
                fleet.keys().clone(),
                config.retention,
            ));
            options.feedback = Some(Arc::new(manager));
        }
        // Checkpoints are kept in the fleet's Redis too, so any machine can resume the run.
        if let Some(checkpoints) = options.checkpoints.as_mut() {
            let retention = config
                .retention
                .max(checkpoints.keep_for.unwrap_or_default());
            checkpoints.mirror = Some(Arc::new(RedisCheckpoints::new(
                fleet.link().clone(),
                fleet.keys().clone(),
                retention,
            )));
        }
        let watch = FleetWatch {
            link: fleet.link().clone(),
            keys: fleet.keys().clone(),
            sink: sink.clone(),
            control: None,
        };
        options.sinks.push(sink);
        options.fleet = Some(Arc::new(fleet));
        options.groups_on_fleet = choice.groups;
        Ok(Some(watch))
    }
}

/// The checkpoints kept in the fleet's Redis at `url` (the prefix and retention of
/// [`FleetConfig::new`]). `Err` holds the message for a bad URL or an unreachable Redis.
pub async fn checkpoint_store(url: &str) -> Result<RedisCheckpoints, String> {
    let (link, keys, retention) = crate::runsetup::connect_backend(url).await?;
    Ok(RedisCheckpoints::new(link, keys, retention))
}

/// What a run on the fleet keeps while it runs: its event stream in Redis and the watcher of
/// its control key (cancel and checkpoint requests from a studio elsewhere).
pub struct FleetWatch {
    link: Link,
    keys: Keys,
    sink: Arc<RedisEventSink>,
    control: Option<JoinHandle<()>>,
}

impl FleetWatch {
    /// Start applying control requests to the started run.
    pub fn attach(&mut self, handle: &RunHandle) {
        self.control = Some(watch::watch_control(
            self.link.clone(),
            &self.keys,
            handle.run_id(),
            handle.control(),
        ));
    }

    /// The run ended: stop watching, give the event stream a moment to write its last
    /// events, and say so if some had to be dropped.
    pub async fn finish(mut self, err: &Style) {
        if let Some(control) = self.control.take() {
            control.abort();
        }
        let stats = self.sink.finish(std::time::Duration::from_secs(5)).await;
        if stats.dropped > 0 {
            eprintln!(
                "{}",
                err.warning(&format!(
                    "note: Redis was slow: {} of the run's events were left out of its event stream (the run itself was not affected)",
                    stats.dropped
                ))
            );
        }
    }
}
