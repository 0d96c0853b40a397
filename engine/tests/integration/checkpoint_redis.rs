//! Checkpoints in the fleet's Redis, on a real server: kept with the exact bytes of the file
//! and listed without their state; read back with the file's checks, so a flipped byte, a
//! truncation, a foreign value or a lying listing entry is refused naming the key (and
//! arbitrary bytes under a checkpoint key never panic); retention by count and age; the size
//! limit; a run whose Redis went away keeps its local checkpoint; and a run checkpointed on one
//! machine (one folder) resumed on another (another folder) from Redis ends like the
//! uninterrupted run.

use crate::services::Service;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::redis_server::RedisServer;
use graflow_engine::RunOutcome;
use graflow_engine::checkpoint::store::{self, CheckpointInfo};
use graflow_engine::checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointError, CheckpointStore, Compression, Reason,
    RunSnapshot, WorkflowSource,
};
use graflow_engine::distributed::RedisCheckpoints;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::prelude::*;
use proptest::prelude::*;
use serde_json::json;

async fn shelf(server: &RedisServer, prefix: &str) -> RedisCheckpoints {
    let link = Link::connect(&server.url(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    RedisCheckpoints::new(link, Keys::new(prefix), Duration::from_secs(3600))
        .wait(Duration::from_millis(500))
}

fn checkpoint(workflow: &str, run: &str, seq: u32, created_at: &str) -> Checkpoint {
    Checkpoint {
        run_id: run.into(),
        seq,
        created_at: created_at.into(),
        reason: Reason::Deferred,
        task: Some("a".into()),
        workflow: WorkflowSource {
            name: workflow.into(),
            ..WorkflowSource::default()
        },
        metadata: serde_json::Map::new(),
        snapshot: RunSnapshot::default(),
        feedback: Vec::new(),
    }
}

/// Save `ckpt` in `dir`; its listing entry and bytes, as a run's mirror gets them.
fn saved(dir: &Path, ckpt: &Checkpoint, compression: Compression) -> (CheckpointInfo, Vec<u8>) {
    let written = store::save_with(dir, ckpt, None, compression).unwrap_or_else(|e| panic!("{e}"));
    let info = store::info(&written.path).unwrap_or_else(|| panic!("no entry"));
    let bytes = std::fs::read(&written.path).unwrap_or_else(|e| panic!("{e}"));
    (info, bytes)
}

async fn raw(shelf_link: &Link, args: &[&[u8]]) -> redis::Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap_or("PING"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut shelf_link.conn())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn link(server: &RedisServer) -> Link {
    Link::connect(&server.url(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_kept_byte_for_byte_and_listed_without_their_state() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let shelf = shelf(&server, "t-keep").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let small = checkpoint("etl", "run-1", 1, "2026-01-01T00:00:00Z");
    // A big one (above the 4 MiB chunk), compressed: schema 2 with content_bytes.
    let mut big = checkpoint("etl", "run-1", 2, "2026-01-01T00:01:00Z");
    big.snapshot.results = (0..3_000)
        .map(|i| (format!("t{i}"), json!(format!("{i:>3000}"))))
        .collect();
    let (small_info, small_bytes) = saved(dir.path(), &small, Compression::Never);
    let (big_info, big_bytes) = saved(dir.path(), &big, Compression::Above(1024));
    assert!(big_info.content_bytes.is_some());
    let mut plain = big.clone();
    plain.seq = 3;
    plain.created_at = "2026-01-01T00:02:00Z".into();
    let (plain_info, plain_bytes) = saved(dir.path(), &plain, Compression::Never);
    assert!(plain_bytes.len() > 4 * 1024 * 1024, "{}", plain_bytes.len());

    for (info, bytes) in [
        (&small_info, &small_bytes),
        (&big_info, &big_bytes),
        (&plain_info, &plain_bytes),
    ] {
        let kept = shelf
            .put(info, bytes.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.location, shelf.key_of("run-1", info.seq));
        assert!(kept.location.contains("{r:run-1}"), "{}", kept.location);
        // The exact bytes of the file.
        let back = shelf
            .fetch(&kept.reference)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(back == *bytes, "the bytes of {} differ", kept.reference);
    }
    let listing = shelf.list().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    let names: Vec<&str> = listing
        .entries
        .iter()
        .map(|e| e.reference.as_str())
        .collect();
    assert_eq!(names, ["etl-run-1-003", "etl-run-1-002", "etl-run-1-001"]);
    let entry = &listing.entries[1];
    assert_eq!(entry.info.run_id, "run-1");
    assert_eq!(entry.info.workflow, "etl");
    assert_eq!(entry.info.created_at, "2026-01-01T00:01:00Z");
    assert_eq!(entry.info.size_bytes, big_bytes.len() as u64);
    assert_eq!(entry.info.content_bytes, big_info.content_bytes);
    assert_eq!(entry.info.reason, Reason::Deferred);
    for (name, expected) in [("etl-run-1-001", &small), ("etl-run-1-002", &big)] {
        let (loaded, signed) = shelf
            .load(name, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&loaded, expected);
        assert!(!signed);
    }
    assert_eq!(shelf.highest_seq("run-1").await.ok(), Some(3));
    assert_eq!(shelf.highest_seq("nobody").await.ok(), Some(0));
    assert!(matches!(
        shelf.load("etl-run-9-001", None).await,
        Err(CheckpointError::NotFound { .. })
    ));
    // No upload leftovers.
    let keys = server.cli(&["KEYS", "t-keep:*upload*"]);
    assert!(keys.trim().is_empty(), "{keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_foreign_entries_are_refused_naming_the_key() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let shelf = shelf(&server, "t-bad").await;
    let link = link(&server).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ckpt = checkpoint("wf", "r1", 1, "2026-01-01T00:00:00Z");
    let (info, bytes) = saved(dir.path(), &ckpt, Compression::Never);
    let kept = shelf
        .put(&info, bytes.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let key = kept.location.clone();
    let refused = |r: Result<(Checkpoint, bool), CheckpointError>| match r {
        Ok(_) => panic!("a damaged checkpoint was accepted"),
        Err(e) => e,
    };

    // A flipped byte in the payload.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x01;
    raw(&link, &[b"SET", key.as_bytes(), &flipped]).await;
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(
        matches!(&e, CheckpointError::Stored { source, .. } if matches!(**source, CheckpointError::Corrupted { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains(&key), "{e}");

    // Truncated.
    raw(&link, &[b"SET", key.as_bytes(), &bytes[..bytes.len() - 5]]).await;
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(
        e.to_string().contains("truncated") && e.to_string().contains(&key),
        "{e}"
    );

    // Not a checkpoint at all, and another type of value.
    raw(&link, &[b"SET", key.as_bytes(), b"hello"]).await;
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(e.to_string().contains("not a graflow checkpoint"), "{e}");
    raw(&link, &[b"DEL", key.as_bytes()]).await;
    raw(&link, &[b"LPUSH", key.as_bytes(), b"x"]).await;
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(
        e.to_string().contains("another type") && e.to_string().contains(&key),
        "{e}"
    );

    // Another run's checkpoint under this run's key.
    let other = checkpoint("wf", "r2", 1, "2026-01-01T00:00:00Z");
    let other_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_, other_bytes) = saved(other_dir.path(), &other, Compression::Never);
    raw(&link, &[b"DEL", key.as_bytes()]).await;
    raw(&link, &[b"SET", key.as_bytes(), &other_bytes]).await;
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(
        e.to_string().contains("run 'r2'") && e.to_string().contains(&key),
        "{e}"
    );

    // A listing entry that does not parse, or that describes another checkpoint: not listed,
    // reported with its key; loading it is refused.
    let info_key = Keys::new("t-bad").checkpoint_info();
    raw(
        &link,
        &[
            b"HSET",
            info_key.as_bytes(),
            kept.reference.as_bytes(),
            b"{not json",
        ],
    )
    .await;
    let listing = shelf.list().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(listing.entries.is_empty());
    assert_eq!(listing.skipped.len(), 1, "{:?}", listing.skipped);
    assert!(
        listing.skipped[0].contains(&info_key),
        "{:?}",
        listing.skipped
    );
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(e.to_string().contains(&info_key), "{e}");
    let mut lying = info.clone();
    lying.run_id = "r2".into();
    let lying = serde_json::to_vec(&lying).unwrap_or_default();
    raw(
        &link,
        &[
            b"HSET",
            info_key.as_bytes(),
            kept.reference.as_bytes(),
            &lying,
        ],
    )
    .await;
    let e = refused(shelf.load(&kept.reference, None).await);
    assert!(
        e.to_string().contains("describes checkpoint 'wf-r2-001'"),
        "{e}"
    );

    // Too large, both ways.
    let tiny = shelf.clone().max_bytes(100);
    assert!(matches!(
        tiny.put(&info, bytes.clone()).await,
        Err(CheckpointError::TooLarge { limit: 100, .. })
    ));
    shelf
        .put(&info, bytes.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = refused(tiny.load(&kept.reference, None).await);
    assert!(
        e.to_string().contains("above the 100 bytes") && e.to_string().contains(&key),
        "{e}"
    );

    // An entry whose bytes expired is dropped from the listing.
    raw(&link, &[b"DEL", key.as_bytes()]).await;
    let listing = shelf.list().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(listing.entries.is_empty() && listing.skipped.is_empty());
    assert_eq!(server.cli(&["ZCARD", "t-bad:checkpoints"]).trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_count_and_age_applies_in_redis() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let shelf = shelf(&server, "t-keep-last").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let now = SystemTime::now();
    let ago = |days: u64| {
        humantime::format_rfc3339_micros(now - Duration::from_secs(days * 86_400)).to_string()
    };
    for (seq, days) in [(1, 30), (2, 20), (3, 10), (4, 2), (5, 1)] {
        let (info, bytes) = saved(
            dir.path(),
            &checkpoint("etl", "r1", seq, &ago(days)),
            Compression::Never,
        );
        shelf
            .put(&info, bytes)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (info, bytes) = saved(
        dir.path(),
        &checkpoint("report", "r2", 1, &ago(40)),
        Compression::Never,
    );
    shelf
        .put(&info, bytes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut removed = shelf
        .prune("etl", Some(4), None, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(removed, ["etl-r1-001"]);
    removed = shelf
        .prune("etl", None, Some(Duration::from_secs(7 * 86_400)), now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    removed.sort();
    assert_eq!(removed, ["etl-r1-002", "etl-r1-003"]);
    let names: Vec<String> = shelf
        .list()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .entries
        .into_iter()
        .map(|e| e.reference)
        .collect();
    assert_eq!(names, ["etl-r1-005", "etl-r1-004", "report-r2-001"]);
    // The bytes went with the entries.
    for seq in [1, 2, 3] {
        let key = shelf.key_of("r1", seq);
        assert_eq!(server.cli(&["EXISTS", &key]).trim(), "0", "{key}");
    }
    // The newest is always kept.
    let removed = shelf
        .prune("report", Some(1), Some(Duration::from_secs(86_400)), now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(removed.is_empty(), "{removed:?}");
    // Keys expire.
    let ttl: i64 = server
        .cli(&["TTL", &shelf.key_of("r1", 5)])
        .trim()
        .parse()
        .unwrap_or(-1);
    assert!(ttl > 0 && ttl <= 3600, "{ttl}");
}

/// Whatever bytes sit under a checkpoint key — random, or a valid checkpoint cut short,
/// extended or with a byte changed — reading them gives a checkpoint or an error, never a
/// panic. (One server for all cases, stopped when the test ends.)
#[test]
fn any_bytes_under_a_checkpoint_key_are_refused_or_decoded() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..600),
        0usize..2_000,
        0usize..2_000,
        1u8..=255,
        proptest::collection::vec(any::<u8>(), 0..8),
        0u8..4,
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&strategy, |(random, cut, at, flip, tail, mode)| {
        rt.block_on(async {
            let shelf = shelf(&server, "t-fuzz").await;
            let link = link(&server).await;
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let mut ckpt = checkpoint("wf", "r1", 1, "2026-01-01T00:00:00Z");
            ckpt.snapshot.results = [("a".to_string(), json!({"x": [1, 2, "three"]}))].into();
            let compression = if mode % 2 == 0 {
                Compression::Never
            } else {
                Compression::Above(10)
            };
            let (info, valid) = saved(dir.path(), &ckpt, compression);
            let kept = shelf
                .put(&info, valid.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let bytes = match mode {
                0 => random,
                1 => valid[..cut.min(valid.len())].to_vec(),
                2 => {
                    let mut b = valid.clone();
                    let i = at % b.len();
                    b[i] ^= flip;
                    b
                }
                _ => {
                    let mut b = valid.clone();
                    b.extend_from_slice(&tail);
                    b
                }
            };
            raw(&link, &[b"SET", kept.location.as_bytes(), &bytes]).await;
            match shelf.load(&kept.reference, None).await {
                Ok((back, _)) => assert_eq!(back.run_id, "r1"),
                Err(e) => assert!(e.to_string().contains(&kept.location), "{e}"),
            }
        });
        Ok(())
    });
    outcome.unwrap_or_else(|e| panic!("{e}"));
}

/// A chain a >> b >> c, each adding to the channel and asking for a deferred checkpoint.
fn chain() -> Arc<Workflow> {
    let mut wf = Workflow::builder("chain");
    let [a, b, c] = ["a", "b", "c"].map(|id| {
        wf.task(id, move |ctx: TaskContext| async move {
            let n = ctx.channel().atomic_add("total", 1.0).await?;
            ctx.checkpoint(json!({"after": ctx.task_id()}));
            anyhow::Ok(json!({"task": ctx.task_id(), "total": n}))
        })
    });
    wf.flow(a >> b >> c);
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

fn config(dir: &Path, mirror: Option<Arc<dyn CheckpointStore>>) -> CheckpointConfig {
    CheckpointConfig {
        dir: dir.to_path_buf(),
        workflow: WorkflowSource {
            name: "chain".into(),
            ..WorkflowSource::default()
        },
        keep_last: None,
        keep_for: None,
        compression: Compression::default(),
        signing_key: None,
        mirror,
    }
}

async fn run(wf: &Arc<Workflow>, options: RunOptions) -> RunOutcome {
    Engine::new().run(wf.clone(), options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_checkpointed_on_one_machine_resumes_on_another_from_redis() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let mirror: Arc<dyn CheckpointStore> = Arc::new(shelf(&server, "t-machines").await);
    let wf = chain();
    let machine_a = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let full = run(
        &wf,
        RunOptions::new().checkpoints(config(machine_a.path(), Some(mirror.clone()))),
    )
    .await;
    assert!(full.succeeded(), "{:?}", full.error);
    let listing = mirror.list().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing.entries.len(), 3, "{listing:?}");
    // Machine B has none of A's files: every checkpoint comes from Redis.
    let from_redis: Vec<String> = listing
        .entries
        .iter()
        .map(|e| e.reference.clone())
        .collect();
    drop(machine_a);
    for reference in from_redis {
        let machine_b = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (ckpt, _) = mirror
            .load(&reference, None)
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e}"));
        let handle = Engine::new()
            .resume(
                wf.clone(),
                &ckpt.run_id,
                ckpt.snapshot,
                None,
                &reference,
                RunOptions::new().checkpoints(config(machine_b.path(), Some(mirror.clone()))),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let resumed = handle.wait().await;
        assert_eq!(resumed.status, full.status, "{reference}");
        assert_eq!(resumed.results, full.results, "{reference}");
        assert_eq!(resumed.channel, full.channel, "{reference}");
        assert_eq!(resumed.result, full.result, "{reference}");
        // B numbers its checkpoints after those already kept for the run: none replaced.
        for kept in store::list(machine_b.path()) {
            assert!(kept.seq > 3, "{reference}: B wrote seq {}", kept.seq);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_redis_went_away_keeps_its_local_checkpoints() {
    needs!(Service::Redis);
    let mut server = RedisServer::start_with(&[]);
    let mirror: Arc<dyn CheckpointStore> = Arc::new(shelf(&server, "t-away").await);
    server.kill();
    let wf = chain();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(
        &wf,
        RunOptions::new().checkpoints(config(dir.path(), Some(mirror.clone()))),
    )
    .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["c"]["total"], json!(3));
    assert_eq!(store::list(dir.path()).len(), 3);
    assert!(matches!(
        mirror.list().await,
        Err(CheckpointError::Unavailable(_))
    ));
}
