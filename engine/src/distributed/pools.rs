//! Pools and rate limits shared by the whole fleet: a pool's slots are leased in Redis (a
//! sorted set of holders scored by lease end, in Redis time), renewed by their holder and
//! dropped by the next taker once a dead holder's lease has run out; buckets are GCRA
//! reservations on Redis `TIME` (no clock of any machine is trusted). Taking a pool's slots
//! and its bucket's token is one script call (one round trip); the task's and the queue's
//! buckets are one call each.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::conn::{Link, retry};
use super::keys::Keys;
use super::scripts;
use super::wire::{BucketClaim, Limits, PoolClaim};
use crate::pool::{Wait, WaitReason};
use crate::workflow::{TaskDef, Workflow};

/// How often a waiting taker asks again for free slots, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(100);

/// What an attempt of `def` (a task of `workflow`) must take on a worker.
pub fn claims(workflow: &Workflow, def: &TaskDef) -> Limits {
    let options = &def.options;
    let pool = options.pool.as_ref().and_then(|name| {
        let p = workflow.pools().get(name)?;
        Some(PoolClaim {
            name: name.clone(),
            slots: options.slots.unwrap_or(1).min(p.slots),
            size: p.slots,
            interval_us: p.rate_limit.map_or(0, |r| micros(r.interval())),
            burst: p.rate_limit.map_or(1, |r| r.burst),
            rate: p.rate_limit.map(|r| r.to_string()),
        })
    });
    let mut buckets = Vec::new();
    if let Some(r) = options.rate_limit {
        buckets.push(BucketClaim {
            key: format!("task:{}:{}", workflow.name(), def.id()),
            label: format!("rate limit of task '{}' ({r})", def.id()),
            interval_us: micros(r.interval()),
            burst: r.burst,
        });
    }
    if let Some(q) = &options.queue
        && let Some(r) = workflow.queues().get(q).and_then(|d| d.rate_limit)
    {
        buckets.push(BucketClaim {
            key: format!("queue:{q}"),
            label: format!("rate limit of queue '{q}' ({r})"),
            interval_us: micros(r.interval()),
            burst: r.burst,
        });
    }
    Limits { pool, buckets }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// Slots of a pool held in Redis: renewed every third of the lease while alive, given back
/// when dropped (a holder that dies gives them back when its lease runs out).
pub struct HeldSlots {
    link: Link,
    key: String,
    used: String,
    member: String,
    renew: JoinHandle<()>,
}

impl Drop for HeldSlots {
    fn drop(&mut self) {
        self.renew.abort();
        let (link, key, used, member) = (
            self.link.clone(),
            self.key.clone(),
            self.used.clone(),
            self.member.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = retry(
                    &link,
                    "giving back pool slots",
                    Some(Duration::from_secs(30)),
                    |mut c| {
                        let (key, used, member) = (&key, &used, &member);
                        async move {
                            scripts::POOL_RELEASE
                                .key(key)
                                .key(used)
                                .arg(member)
                                .invoke_async::<i64>(&mut c)
                                .await
                        }
                    },
                )
                .await;
            });
        }
    }
}

/// Take what `limits` asks for, as `holder` (unique per attempt execution): the pool's slots
/// (asking again while too few are free), its bucket's token, then each other bucket's token,
/// sleeping until each may be used. `on_wait` is told before each wait.
pub async fn admit(
    link: &Link,
    keys: &Keys,
    limits: &Limits,
    holder: &str,
    lease: Duration,
    mut on_wait: impl FnMut(Wait),
) -> Result<Option<HeldSlots>, redis::RedisError> {
    let mut held = None;
    if let Some(pool) = &limits.pool {
        let pk = keys.pool(&pool.name);
        let (slots_key, rate_key, used_key) = (pk.slots(), pk.rate(), pk.used());
        let mut poll = POLL_FIRST;
        let mut told = false;
        let lease_ms = lease.as_millis().max(1) as u64;
        loop {
            let (taken, used, wait_us): (i64, i64, i64) =
                retry(link, "taking pool slots", None, |mut c| {
                    let (slots_key, rate_key, used_key) = (&slots_key, &rate_key, &used_key);
                    async move {
                        scripts::POOL_TAKE
                            .key(slots_key)
                            .key(rate_key)
                            .key(used_key)
                            .arg(holder)
                            .arg(pool.slots)
                            .arg(pool.size)
                            .arg(lease_ms)
                            .arg(pool.interval_us)
                            .arg(pool.burst)
                            .invoke_async(&mut c)
                            .await
                    }
                })
                .await?;
            if taken == 1 {
                let member = format!("{}|{holder}", pool.slots);
                held = Some(HeldSlots {
                    link: link.clone(),
                    key: slots_key.clone(),
                    used: used_key.clone(),
                    renew: tokio::spawn(renew(
                        link.clone(),
                        [slots_key.clone(), used_key.clone()],
                        member.clone(),
                        lease,
                    )),
                    member,
                });
                if wait_us > 0 {
                    let wait = Duration::from_micros(wait_us as u64);
                    on_wait(rate_wait(
                        Some(&pool.name),
                        &format!(
                            "rate limit of pool '{}'{}",
                            pool.name,
                            pool.rate
                                .as_ref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        ),
                        wait,
                    ));
                    tokio::time::sleep(wait).await;
                }
                break;
            }
            if !told {
                told = true;
                on_wait(Wait {
                    reason: WaitReason::PoolSlots,
                    pool: Some(Arc::from(pool.name.as_str())),
                    detail: format!(
                        "pool '{}': {used} of {} slots in use across the fleet, {} needed",
                        pool.name, pool.size, pool.slots
                    ),
                });
            }
            let jitter = rand::random::<f64>() * 0.5 + 0.75;
            tokio::time::sleep(poll.mul_f64(jitter)).await;
            poll = (poll * 2).min(POLL_MAX);
        }
    }
    for bucket in &limits.buckets {
        let wait_us = take_token(link, keys, bucket).await?;
        if wait_us > 0 {
            let wait = Duration::from_micros(wait_us);
            on_wait(rate_wait(None, &bucket.label, wait));
            tokio::time::sleep(wait).await;
        }
    }
    Ok(held)
}

/// Reserve the next token of `bucket`: how long to wait (µs) before using it.
pub async fn take_token(
    link: &Link,
    keys: &Keys,
    bucket: &BucketClaim,
) -> Result<u64, redis::RedisError> {
    let key = keys.bucket(&bucket.key);
    let wait: i64 = retry(link, "taking a rate-limit token", None, |mut c| {
        let key = &key;
        async move {
            scripts::BUCKET_TAKE
                .key(key)
                .arg(bucket.interval_us)
                .arg(bucket.burst)
                .invoke_async(&mut c)
                .await
        }
    })
    .await?;
    Ok(wait.max(0) as u64)
}

/// An API asked to be left alone for `delay`: hold the pool's bucket (or the task's own,
/// `task_bucket`, when there is no pool) for every worker and coordinator of the fleet.
pub async fn hold(
    link: &Link,
    keys: &Keys,
    limits: &Limits,
    task_bucket: &str,
    delay: Duration,
) -> Result<(), redis::RedisError> {
    let (key, interval_us, burst) = match &limits.pool {
        Some(p) => (keys.pool(&p.name).rate(), p.interval_us, p.burst),
        None => match limits.buckets.iter().find(|b| b.key == task_bucket) {
            Some(b) => (keys.bucket(&b.key), b.interval_us, b.burst),
            None => (keys.bucket(task_bucket), 0, 1),
        },
    };
    retry(
        link,
        "holding a bucket",
        Some(Duration::from_secs(10)),
        |mut c| {
            let key = &key;
            async move {
                scripts::BUCKET_HOLD
                    .key(key)
                    .arg(micros(delay))
                    .arg(interval_us)
                    .arg(burst)
                    .invoke_async::<i64>(&mut c)
                    .await
            }
        },
    )
    .await
    .map(|_| ())
}

fn rate_wait(pool: Option<&str>, what: &str, wait: Duration) -> Wait {
    Wait {
        reason: WaitReason::RateLimit,
        pool: pool.map(Arc::from),
        detail: format!(
            "{what}: next start in {}",
            humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
        ),
    }
}

/// Keep a holder's slots leased until aborted.
async fn renew(link: Link, keys: [String; 2], member: String, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        let still: Result<i64, _> = retry(&link, "renewing pool slots", Some(lease), |mut c| {
            let (keys, member) = (&keys, &member);
            async move {
                scripts::POOL_RENEW
                    .key(&keys[0])
                    .key(&keys[1])
                    .arg(member)
                    .arg(lease.as_millis() as u64)
                    .invoke_async(&mut c)
                    .await
            }
        })
        .await;
        match still {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!("the lease of pool slots {member} ran out before it was renewed");
                return;
            }
            Err(e) => tracing::warn!("renewing pool slots {member}: {e}"),
        }
    }
}
