//! The studio on a fleet's Redis: reading the fleet for the fleet view, loading a remote
//! run's workflow and following its event stream (the same reader as `graflow events
//! --attach`), asking its coordinator to cancel or checkpoint it through its control key,
//! reading its channel, and the inbox's requests in Redis.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use graflow_engine::Channel;
use graflow_engine::distributed::RedisFeedback;
use graflow_engine::distributed::channel::RedisChannel;
use graflow_engine::distributed::conn::{Link, redact};
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::watch::{self, ControlRequest, DeadLetter, RunFollower};
use graflow_engine::distributed::{FleetConfig, is_redis_url};
use graflow_engine::handler::Runtimes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::studio::app::Msg;
use crate::studio::screens::fleet::{AttachedRun, FleetData};

/// Workers silent for longer than this leave the fleet view.
const FORGET_WORKERS: Duration = Duration::from_secs(600);

/// Runs the fleet view lists.
const RUNS_LISTED: usize = 200;

/// The studio's connection to a fleet.
#[derive(Clone)]
pub struct FleetLink {
    /// The URL without its password.
    pub shown: String,
    /// The connection.
    pub link: Link,
    /// The key layout.
    pub keys: Keys,
    /// Feedback requests in the fleet's Redis.
    pub feedback: Arc<RedisFeedback>,
}

impl FleetLink {
    /// Connect to the fleet at `url` (waiting up to 5 s for Redis).
    pub async fn connect(url: &str) -> Result<FleetLink, String> {
        if !is_redis_url(url) {
            return Err(format!("--attach {url}: expected redis://host:port[/db]"));
        }
        let config = FleetConfig::new(url);
        let link = Link::connect(url, Duration::from_secs(5)).await?;
        let keys = Keys::new(config.prefix.clone());
        Ok(FleetLink {
            shown: redact(url),
            feedback: Arc::new(RedisFeedback::new(
                link.clone(),
                keys.clone(),
                config.retention,
            )),
            link,
            keys,
        })
    }
}

/// A remote run being followed.
pub struct RemoteRun {
    /// Its channel in Redis.
    pub channel: Channel,
    /// The follower.
    pub task: JoinHandle<()>,
}

/// Read the fleet and send it to the app.
pub fn refresh(fleet: &FleetLink, tx: mpsc::Sender<Msg>) {
    let fleet = fleet.clone();
    tokio::spawn(async move {
        let result = async {
            let runs = watch::list_runs(&fleet.link, &fleet.keys, RUNS_LISTED).await?;
            let snapshot = watch::fleet_snapshot(&fleet.link, &fleet.keys, FORGET_WORKERS).await?;
            Ok(FleetData {
                runs,
                fleet: snapshot,
            })
        }
        .await;
        let _ = tx.send(Msg::Fleet(result)).await;
    });
}

/// Requeue dead letter `letter` of `queue` and tell the app how it went.
pub fn requeue(fleet: &FleetLink, queue: String, letter: DeadLetter, tx: mpsc::Sender<Msg>) {
    let fleet = fleet.clone();
    tokio::spawn(async move {
        let who = format!("the studio on {}", graflow_engine::distributed::host_name());
        let result = watch::requeue_dead_letter(&fleet.link, &fleet.keys, &queue, &letter, &who)
            .await
            .map(|()| {
                format!(
                    "requeued {} of run {} on queue {queue}",
                    letter.attempt, letter.run
                )
            });
        let _ = tx.send(Msg::Requeued(result.map_err(String::from))).await;
    });
}

/// Load run `run`'s workflow, tell the app, then forward its events until `run_finished`.
pub fn attach(
    fleet: &FleetLink,
    run: String,
    runtimes: Runtimes,
    tx: mpsc::Sender<Msg>,
) -> RemoteRun {
    let channel = Channel::from_backend(Arc::new(RedisChannel::new(
        fleet.link.clone(),
        fleet.keys.run(&run),
    )));
    let fleet = fleet.clone();
    let task = tokio::spawn(async move {
        let loaded = load(&fleet, &run, &runtimes).await;
        let ok = loaded.is_ok();
        if tx.send(Msg::Attached(Box::new(loaded))).await.is_err() || !ok {
            return;
        }
        let mut follower = RunFollower::new(fleet.link.clone(), &fleet.keys, &run);
        let mut failures = 0u32;
        while !follower.ended() {
            match follower.next_events(Duration::from_millis(1000)).await {
                Ok(events) if events.is_empty() => {}
                Ok(events) => {
                    failures = 0;
                    if tx.send(Msg::Engine(events)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        let _ = tx.send(Msg::Problem(e.to_string())).await;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let _ = tx.send(Msg::RunEnded(run)).await;
    });
    RemoteRun { channel, task }
}

async fn load(fleet: &FleetLink, run: &str, runtimes: &Runtimes) -> Result<AttachedRun, String> {
    let summary = watch::run_summary(&fleet.link, &fleet.keys, run)
        .await?
        .ok_or_else(|| format!("run {run} is no longer in the fleet's Redis"))?;
    let hash = summary.workflow_hash.clone().ok_or_else(|| {
        format!("run {run} did not store its workflow (a run from a Rust program?)")
    })?;
    let (path, text) = watch::workflow_text(&fleet.link, &fleet.keys, &hash).await?;
    let path = PathBuf::from(path);
    let runtimes = runtimes.clone();
    let parse_path = path.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        graflow_engine::file::load_str(&text, &parse_path, &runtimes)
    })
    .await
    .map_err(|e| format!("loading run {run}'s workflow: {e}"))?
    .map_err(|e| format!("run {run}'s workflow does not load here: {e}"))?;
    Ok(AttachedRun {
        summary,
        workflow: loaded.workflow.clone(),
        path,
    })
}

/// Ask a remote run's coordinator for `request`; a failure goes to the app.
pub fn control(fleet: &FleetLink, run: String, request: ControlRequest, tx: mpsc::Sender<Msg>) {
    let fleet = fleet.clone();
    tokio::spawn(async move {
        if let Err(e) = watch::send_control(&fleet.link, &fleet.keys, &run, &request).await {
            let _ = tx.send(Msg::Problem(e.to_string())).await;
        }
    });
}

/// Stop following every remote run.
pub fn stop_all(remote: &mut HashMap<String, RemoteRun>) {
    for (_, r) in remote.drain() {
        r.task.abort();
    }
}
