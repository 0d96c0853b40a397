//! The coordinator's hold on its run: the lease and its fencing epoch, settling what a
//! previous coordinator left, and the checks that find attempts Redis or a worker lost.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use redis::RedisError;

use crate::distributed::conn::retry;
use crate::distributed::keys::RunKeys;
use crate::distributed::scripts;

use super::RedisFleet;
use super::run::{RunInner, Sent, Why};
use crate::dispatch::FleetError;

impl RunInner {
    /// Check pending attempts again: enqueue them (idempotent), put them back on their
    /// stream when Redis lost the entry (after a restart) or their holder is gone, and take
    /// outcomes whose report was lost. A sweep checks attempts older than `older_than`.
    pub(super) async fn reconcile(&self, why: Why, older_than: Duration) {
        let pending: Vec<Arc<Sent>> = self
            .pending
            .lock()
            .iter()
            .filter(|(_, w)| w.outcome.is_some() && w.since.elapsed() >= older_than)
            .map(|(_, w)| w.sent.clone())
            .collect();
        if why == Why::Reconcile {
            if !pending.is_empty() {
                tracing::info!(
                    "run {}: checking {} attempts in flight after Redis was away",
                    self.run_id,
                    pending.len()
                );
            }
            self.queues.lock().clear();
        }
        for sent in pending {
            if let Err(e) = self.send(&sent, why).await {
                tracing::warn!("run {}: attempt {}: {e}", self.run_id, sent.tid);
            }
        }
    }

    /// Renew the coordinator's lease once: the script's reply and the Redis server's run id
    /// (it changes when Redis restarts).
    pub(super) async fn renew(&self) -> Result<(Vec<String>, Option<String>), RedisError> {
        let lease = self.fleet.config.lease;
        let hold = self.fleet.config.dead_letter_hold.as_millis() as u64;
        let (coord, owner, epoch) = (self.keys.coord(), self.fleet.id.clone(), self.epoch);
        let attempts = self.keys.attempts();
        let retention = self.fleet.config.retention.as_millis() as u64;
        let (renewed, info): (Vec<String>, String) =
            retry(self.link(), "renewing the run's lease", None, |mut c| {
                let (coord, owner, attempts) = (coord.clone(), owner.clone(), attempts.clone());
                async move {
                    let renewed: Vec<String> = scripts::RENEW
                        .key(&coord)
                        .arg(&*owner)
                        .arg(epoch)
                        .arg(lease.as_millis() as u64)
                        .arg(hold)
                        .invoke_async(&mut c)
                        .await?;
                    let info = c.server_info(&coord).await?;
                    // The set of the run's attempts lives as long as its records.
                    let _: i64 = redis::cmd("PEXPIRE")
                        .arg(&attempts)
                        .arg(retention)
                        .query_async(&mut c)
                        .await?;
                    Ok((renewed, info))
                }
            })
            .await?;
        let id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|s| s.trim().to_string());
        Ok((renewed, id))
    }
}

/// Take the run's coordinator lease. A resumed run waits for a previous coordinator's lease
/// to run out (it may have died a moment ago); a fresh run takes it at once.
pub(super) async fn claim(
    fleet: &RedisFleet,
    keys: &RunKeys,
    resumed: bool,
) -> Result<u64, FleetError> {
    let lease = fleet.config.lease.as_millis() as u64;
    let hold = fleet.config.dead_letter_hold.as_millis() as u64;
    let coord = keys.coord();
    let mut told = false;
    loop {
        let reply: Vec<String> = retry(
            &fleet.link,
            "taking the run's lease",
            Some(fleet.config.connect_wait),
            |mut c| {
                let coord = coord.clone();
                let id = fleet.id.clone();
                async move {
                    scripts::CLAIM
                        .key(coord)
                        .arg(&*id)
                        .arg(lease)
                        .arg(hold)
                        .invoke_async(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| {
            FleetError::Store(format!(
                "taking the run's lease on Redis at {}: {e}",
                fleet.link.address()
            ))
        })?;
        match reply.first().map(String::as_str) {
            Some("ok") => {
                return reply
                    .get(1)
                    .and_then(|e| e.parse().ok())
                    .ok_or_else(|| FleetError::Store("the lease script returned no epoch".into()));
            }
            Some("busy") if resumed => {
                let left: u64 = reply.get(2).and_then(|m| m.parse().ok()).unwrap_or(1000);
                if !told {
                    told = true;
                    tracing::warn!(
                        "coordinator {} still holds this run's lease; waiting {:.1} s for it to run out",
                        reply.get(1).map(String::as_str).unwrap_or("?"),
                        left as f64 / 1000.0
                    );
                }
                tokio::time::sleep(Duration::from_millis(left.clamp(50, 5_000))).await;
            }
            Some("busy") => {
                return Err(FleetError::Refused(format!(
                    "coordinator {} is already running this run",
                    reply.get(1).map(String::as_str).unwrap_or("?")
                )));
            }
            other => {
                return Err(FleetError::Store(format!(
                    "unexpected reply from the lease script: {other:?}"
                )));
            }
        }
    }
}

/// Settle what a previous coordinator of the run left on the fleet: wait (up to a lease plus
/// 30 s) for attempts still running under a live lease to end, then cancel what is still
/// queued or running (it runs again under this coordinator) and give the workers a heartbeat
/// to stop it. Returns the Redis time when that was done.
pub(super) async fn settle(
    fleet: &RedisFleet,
    keys: &RunKeys,
    resumed: bool,
) -> Result<u64, String> {
    let fail =
        |e: RedisError| format!("settling the run on Redis at {}: {e}", fleet.link.address());
    let call = |mode: &'static str| settle_call(fleet, keys, mode);
    if !resumed {
        return call("count").await.map(|(_, _, now)| now).map_err(fail);
    }
    let deadline = std::time::Instant::now() + fleet.config.lease + Duration::from_secs(30);
    let mut told = false;
    loop {
        let (live, _, _) = call("count").await.map_err(fail)?;
        if live == 0 || std::time::Instant::now() >= deadline {
            break;
        }
        if !told {
            told = true;
            tracing::warn!("waiting for {live} attempts the previous coordinator started to end");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, cancelled, _) = call("cancel").await.map_err(fail)?;
    if cancelled > 0 {
        // Workers stop cancelled attempts at their next heartbeat (at most a second).
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    call("count").await.map(|(_, _, now)| now).map_err(fail)
}

/// One call of the settle script: live running attempts, attempts cancelled, Redis time.
pub(super) async fn settle_call(
    fleet: &RedisFleet,
    keys: &RunKeys,
    mode: &'static str,
) -> Result<(u64, u64, u64), RedisError> {
    let (set, prefix) = (keys.attempts(), keys.attempt_prefix());
    retry(
        &fleet.link,
        "settling the run",
        Some(fleet.config.connect_wait),
        |mut c| {
            let (set, prefix) = (set.clone(), prefix.clone());
            async move {
                scripts::SETTLE
                    .key(set)
                    .arg(mode)
                    .arg(prefix)
                    .invoke_async(&mut c)
                    .await
            }
        },
    )
    .await
}

/// Renew the coordinator's lease every third of it; notice when another coordinator took the
/// run (the run stops) and when Redis restarted or the lease lapsed (pending attempts are
/// checked again).
pub(super) async fn keep_lease(run: Arc<RunInner>) {
    let every = run.fleet.config.lease / 3;
    let mut server: Option<String> = None;
    loop {
        tokio::time::sleep(every).await;
        let Ok((renewed, id)) = run.renew().await else {
            continue;
        };
        let restarted = server.is_some() && id != server;
        server = id;
        match renewed.first().map(String::as_str) {
            Some("fenced") => {
                (run.cancel_run)(format!(
                    "coordinator {} took over run {}",
                    renewed.get(1).map(String::as_str).unwrap_or("?"),
                    run.run_id
                ));
                return;
            }
            Some("ok") if restarted || renewed.get(1).map(String::as_str) == Some("1") => {
                run.reconcile.notify_one();
            }
            _ => {}
        }
    }
}

pub(super) async fn reconcile_when_asked(run: Arc<RunInner>) {
    loop {
        run.reconcile.notified().await;
        // Let a burst of notices settle into one pass.
        tokio::time::sleep(Duration::from_millis(100)).await;
        run.reconcile.notified().now_or_never();
        run.reconcile(Why::Reconcile, Duration::ZERO).await;
    }
}

/// Every two leases, check attempts that have waited longer than a lease: one whose holder
/// stopped renewing and whose queue entry is gone (so no reaper sees it) is queued again.
pub(super) async fn sweep(run: Arc<RunInner>) {
    let lease = run.fleet.config.lease;
    let every = (lease * 2).max(Duration::from_secs(2));
    loop {
        tokio::time::sleep(every).await;
        run.reconcile(Why::Sweep, lease).await;
    }
}
