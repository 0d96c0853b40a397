//! The cost of taking a pool slot and a rate-limit token: locally (a semaphore permit and a
//! GCRA reservation under one lock; target ≤ 1 µs), and through Redis (one `pool_take.lua`
//! call that takes the slot and reserves the token; target ≤ one round trip, measured against
//! a `PING` round trip on the same connection). The Redis workloads start a `redis-server` of
//! their own on a free loopback port and are skipped when none is installed.

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::pools;
use graflow_engine::distributed::wire::{Limits, PoolClaim};
use graflow_engine::pool::Limiter;
use graflow_engine::workflow::TaskOptions;
use graflow_engine::{PoolDef, RateLimit};
use serde_json::json;
use support::report_with;

const RUNS: usize = 7;

fn local(rt: &tokio::runtime::Runtime) {
    const N: usize = 200_000;
    // A pool big enough never to wait, with a rate fast enough never to wait: the cost of the
    // bookkeeping itself.
    let rate: RateLimit = "1000000000/s burst 1000000".parse().expect("rate");
    let mut defs = BTreeMap::new();
    defs.insert("api".to_string(), PoolDef::new(1_000).rate_limit(rate));
    let limiter = Limiter::new(&defs, &BTreeMap::new());
    let options = TaskOptions {
        pool: Some("api".into()),
        slots: Some(1),
        ..TaskOptions::default()
    };
    let samples: Vec<Duration> = (0..=RUNS)
        .map(|_| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..N {
                    let admission = limiter.admit("t", &options, |_| {}).await;
                    drop(admission);
                }
                t0.elapsed()
            })
        })
        .skip(1)
        .collect();
    report_with(
        "pool_slot_and_token_local",
        N,
        &samples,
        json!({"target_us": 1.0}),
    );
}

fn redis(rt: &tokio::runtime::Runtime) {
    const N: usize = 2_000;
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("redis-server is not installed: the Redis workloads are skipped");
        return;
    }
    let server = redis_server::RedisServer::start_with(&[]);
    rt.block_on(async {
        let link = Link::connect(&server.url(), Duration::from_secs(10))
            .await
            .expect("connects");
        let keys = Keys::new("bench");
        let limits = Limits {
            pool: Some(PoolClaim {
                name: "api".into(),
                slots: 1,
                size: 1_000_000,
                interval_us: 1,
                burst: 1_000_000,
                rate: None,
            }),
            buckets: Vec::new(),
        };
        let mut ping = Vec::new();
        let mut take = Vec::new();
        for run in 0..=RUNS {
            let t0 = Instant::now();
            for _ in 0..N {
                let mut c = link.conn();
                let _: String = redis::cmd("PING").query_async(&mut c).await.expect("ping");
            }
            let p = t0.elapsed();
            let mut held_all = Vec::with_capacity(N);
            let t0 = Instant::now();
            for i in 0..N {
                let held = pools::admit(
                    &link,
                    &keys,
                    &limits,
                    &format!("bench:{run}:{i}"),
                    Duration::from_secs(10),
                    |_| {},
                )
                .await
                .expect("takes");
                held_all.push(held);
            }
            let t = t0.elapsed();
            // Given back in the background (not part of taking).
            drop(held_all);
            if run > 0 {
                ping.push(p);
                take.push(t);
            }
            let mut c = link.conn();
            let _: () = redis::cmd("DEL")
                .arg(keys.pool("api").slots())
                .query_async(&mut c)
                .await
                .expect("clears");
        }
        let ping_s = report_with("redis_ping_round_trip", N, &ping, json!({}));
        let take_s = report_with(
            "pool_slot_and_token_redis",
            N,
            &take,
            json!({"round_trips": 1, "target": "<= one round trip (plus the script's own work)"}),
        );
        eprintln!(
            "taking a slot and a token through Redis costs {:.2} PING round trips",
            take_s / ping_s
        );
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    local(&rt);
    redis(&rt);
}
