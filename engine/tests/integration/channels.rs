//! The channel: every operation, TTL, typed access, and concurrent writes from group members.

use std::sync::Arc;
use std::time::Duration;

use graflow_engine::ChannelError;
use graflow_engine::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[tokio::test]
async fn basic_operations() {
    let ch = Channel::memory();
    assert_eq!(ch.get("k").await.unwrap(), None);
    ch.set("k", 1).await.unwrap();
    assert_eq!(ch.get("k").await.unwrap(), Some(json!(1)));
    assert_eq!(ch.get_or("missing", json!("d")).await.unwrap(), json!("d"));
    assert!(ch.exists("k").await.unwrap());
    assert_eq!(ch.append("list", "b").await.unwrap(), 1);
    assert_eq!(ch.append("list", "c").await.unwrap(), 2);
    assert_eq!(ch.prepend("list", "a").await.unwrap(), 3);
    assert_eq!(ch.get("list").await.unwrap(), Some(json!(["a", "b", "c"])));
    assert_eq!(ch.keys().await.unwrap(), ["k", "list"]);
    assert!(ch.delete("k").await.unwrap());
    assert!(!ch.delete("k").await.unwrap());
    assert_eq!(ch.atomic_add("n", 2.0).await.unwrap(), json!(2));
    assert_eq!(ch.atomic_add("n", -5.0).await.unwrap(), json!(-3));
    assert_eq!(ch.atomic_add("n", 0.5).await.unwrap(), json!(-2.5));
    ch.clear().await.unwrap();
    assert!(ch.keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn type_errors_name_the_key() {
    let ch = Channel::memory();
    ch.set("s", "text").await.unwrap();
    assert_eq!(
        ch.append("s", 1).await.unwrap_err(),
        ChannelError::NotAList("s".into())
    );
    assert_eq!(
        ch.atomic_add("s", 1.0).await.unwrap_err().to_string(),
        "channel key 's' holds a string, expected a number"
    );
}

#[tokio::test]
async fn ttl_expires_and_a_plain_set_clears_it() {
    let ch = Channel::memory();
    ch.set_with_ttl("t", 1, Duration::from_millis(30))
        .await
        .unwrap();
    ch.set_with_ttl("kept", 1, Duration::from_millis(30))
        .await
        .unwrap();
    ch.set("kept", 2).await.unwrap();
    assert!(ch.exists("t").await.unwrap());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(ch.get("t").await.unwrap(), None);
    assert_eq!(ch.keys().await.unwrap(), ["kept"]);
    assert_eq!(ch.get("kept").await.unwrap(), Some(json!(2)));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Progress {
    done: u32,
    total: u32,
    label: String,
}

#[tokio::test]
async fn typed_keys_and_views() {
    let ch = Channel::memory();
    let typed = ch.typed::<Progress>("progress");
    assert_eq!(typed.get().await.unwrap(), None);
    let p = Progress {
        done: 1,
        total: 3,
        label: "x".into(),
    };
    typed.set(&p).await.unwrap();
    assert_eq!(typed.get().await.unwrap(), Some(p));
    ch.set("progress", json!({"done": "nope"})).await.unwrap();
    assert!(
        matches!(typed.get().await.unwrap_err(), ChannelError::Type { key, .. } if key == "progress")
    );

    let view = ch.view::<Progress>(Some("job"));
    view.store(&Progress {
        done: 2,
        total: 5,
        label: "y".into(),
    })
    .await
    .unwrap();
    assert_eq!(ch.get("job.done").await.unwrap(), Some(json!(2)));
    ch.set("job.done", 4).await.unwrap();
    assert_eq!(
        view.load().await.unwrap(),
        Progress {
            done: 4,
            total: 5,
            label: "y".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_members_share_one_channel_without_losing_writes() {
    let mut wf = Workflow::builder("writers");
    let mut members: Vec<Flow> = Vec::new();
    for i in 0..50 {
        members.push(
            wf.task(&format!("w{i}"), move |ctx: TaskContext| async move {
                for j in 0..20 {
                    ctx.channel().append("log", json!([i, j])).await?;
                    ctx.channel().atomic_add("count", 1.0).await?;
                    tokio::task::yield_now().await;
                }
                ctx.channel().set(&format!("own.{i}"), i).await?;
                anyhow::Ok(())
            })
            .into(),
        );
    }
    let check = wf.task("check", |ctx: TaskContext| async move {
        let log = ctx.channel().get("log").await?.unwrap_or_default();
        anyhow::Ok(log.as_array().map(|l| l.len()))
    });
    let group = members.into_iter().reduce(|a, b| a | b).unwrap();
    wf.flow(group >> check);
    let out = Engine::new()
        .run(Arc::new(wf.build().unwrap()), RunOptions::new())
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["check"], json!(1000));
    assert_eq!(out.channel["count"], json!(1000));
    assert_eq!(
        out.channel.keys().filter(|k| k.starts_with("own.")).count(),
        50
    );
}
