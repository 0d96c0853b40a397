//! The Redis channel behaves exactly like the memory channel: random sequences of every
//! operation give the same results and errors on both (a real Redis), numbers keep every
//! digit, expiry works, and `clear` empties the run's keys only.

use crate::services::Service;

use std::sync::Arc;
use std::time::Duration;

use crate::redis_server::RedisServer;
use graflow_engine::channel::{ChannelBackend, MemoryChannel};
use graflow_engine::distributed::RedisChannel;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use proptest::prelude::*;
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn channel(rt: &tokio::runtime::Runtime, server: &RedisServer, run: &str) -> RedisChannel {
    let link = rt
        .block_on(Link::connect(&server.url(), Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    RedisChannel::new(link, Keys::new("test").run(run))
}

#[derive(Debug, Clone)]
enum Op {
    Set(String, Value),
    Get(String),
    Delete(String),
    Exists(String),
    Keys,
    Append(String, Value),
    Prepend(String, Value),
    Add(String, f64),
    Snapshot,
    Clear,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c.d"), Just("ü:{x}")].prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        prop_oneof![Just(0.1f64), Just(-0.0), Just(1e300), Just(2.5)].prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::from),
        Just(json!("é\u{2028}\"quote\"")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        key().prop_map(Op::Get),
        key().prop_map(Op::Delete),
        key().prop_map(Op::Exists),
        Just(Op::Keys),
        (key(), value()).prop_map(|(k, v)| Op::Append(k, v)),
        (key(), value()).prop_map(|(k, v)| Op::Prepend(k, v)),
        (
            key(),
            prop_oneof![
                (-5i32..5).prop_map(f64::from),
                Just(0.5),
                Just(-1.25),
                Just(1e16)
            ]
        )
            .prop_map(|(k, a)| Op::Add(k, a)),
        Just(Op::Snapshot),
        Just(Op::Clear),
    ]
}

async fn apply(c: &dyn ChannelBackend, op: &Op) -> String {
    match op {
        Op::Set(k, v) => format!("{:?}", c.set(k, v.clone(), None).await),
        Op::Get(k) => format!("{:?}", c.get(k).await),
        Op::Delete(k) => format!("{:?}", c.delete(k).await),
        Op::Exists(k) => format!("{:?}", c.exists(k).await),
        Op::Keys => format!("{:?}", c.keys().await),
        Op::Append(k, v) => format!("{:?}", c.append(k, v.clone(), None).await),
        Op::Prepend(k, v) => format!("{:?}", c.prepend(k, v.clone(), None).await),
        Op::Add(k, a) => format!("{:?}", c.atomic_add(k, *a).await),
        Op::Snapshot => format!("{:?}", c.snapshot().await),
        Op::Clear => format!("{:?}", c.clear().await),
    }
}

#[test]
fn random_operation_sequences_agree_with_the_memory_channel() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let rt = runtime();
    let case = std::sync::atomic::AtomicU32::new(0);
    let config = ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..25))| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let memory = MemoryChannel::new();
        let redis = channel(&rt, &server, &format!("case-{n}"));
        for (i, op) in ops.iter().enumerate() {
            let (m, r) = rt.block_on(async { (apply(&memory, op).await, apply(&redis, op).await) });
            prop_assert_eq!(&m, &r, "operation {} ({:?}) of {:?}", i, op, ops);
        }
    });
}

#[test]
fn numbers_keep_every_digit_and_floats_stay_floats() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let rt = runtime();
    let c = channel(&rt, &server, "digits");
    rt.block_on(async {
        let big = json!(9_007_199_254_740_993u64); // 2^53 + 1: not a double
        c.set("big", big.clone(), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("big").await.ok().flatten(), Some(big));
        let precise: Value = serde_json::from_str("0.30000000000000004").unwrap_or_default();
        c.set("f", precise.clone(), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("f").await.ok().flatten(), Some(precise));
        assert_eq!(c.atomic_add("n", 1.5).await.ok(), Some(json!(1.5)));
        assert_eq!(c.atomic_add("n", 1.5).await.ok(), Some(json!(3.0)));
        let three = c.get("n").await.ok().flatten();
        assert!(three.as_ref().is_some_and(Value::is_f64), "{three:?}");
        assert_eq!(c.atomic_add("i", 7.0).await.ok(), Some(json!(7)));
        assert_eq!(c.atomic_add("i", -9.0).await.ok(), Some(json!(-2)));
    });
}

#[test]
fn keys_expire_and_lists_keep_their_expiry() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let rt = runtime();
    let c = channel(&rt, &server, "ttl");
    rt.block_on(async {
        c.set("gone", json!(1), Some(Duration::from_millis(150)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        c.append("list", json!(1), Some(Duration::from_millis(150)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        c.append("list", json!(2), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        c.set("stays", json!("x"), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.keys().await.ok(),
            Some(vec!["gone".into(), "list".into(), "stays".into()])
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(c.get("gone").await.ok(), Some(None));
        assert_eq!(c.get("list").await.ok(), Some(None));
        assert_eq!(c.keys().await.ok(), Some(vec!["stays".into()]));
    });
}

#[test]
fn appends_from_many_tasks_all_land() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let link = rt
        .block_on(Link::connect(&server.url(), Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    let c = Arc::new(RedisChannel::new(link, Keys::new("test").run("many")));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.append("l", json!(i), None).await.map(|_| ())?;
                c.atomic_add("n", 1.0).await.map(|_| ())
            }));
        }
        for t in tasks {
            t.await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let list = c.get("l").await.ok().flatten().unwrap_or_default();
        assert_eq!(list.as_array().map(Vec::len), Some(200));
        assert_eq!(c.get("n").await.ok().flatten(), Some(json!(200)));
    });
}

#[test]
fn clearing_one_runs_channel_leaves_the_others() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let rt = runtime();
    let (a, b) = (channel(&rt, &server, "a"), channel(&rt, &server, "b"));
    rt.block_on(async {
        a.set("k", json!(1), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        b.set("k", json!(2), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        a.clear().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.keys().await.ok(), Some(vec![]));
        assert_eq!(b.get("k").await.ok().flatten(), Some(json!(2)));
    });
}
