//! Property tests of checkpoint decoding: every truncation and every single bit flip of a
//! valid checkpoint is refused with a reason, crafted lengths are refused without a large
//! allocation, and ids read from a checkpoint decide whether it resumes — never a panic.

use std::sync::Arc;

use graflow_engine::checkpoint::Compression;
use graflow_engine::checkpoint::file::{decode, encode, write_with};
use graflow_engine::checkpoint::snapshot::{DynamicTask, EntrySnapshot};
use graflow_engine::checkpoint::{
    Checkpoint, CheckpointError, Reason, RunSnapshot, WorkflowSource,
};
use graflow_engine::prelude::*;
use graflow_engine::valid_run_id;
use proptest::prelude::*;
use serde_json::{Map, json};

fn sample() -> Checkpoint {
    let mut snapshot = RunSnapshot {
        steps: 2,
        ..RunSnapshot::default()
    };
    snapshot
        .results
        .insert("a".into(), json!({"rows": [1, 2, "é"]}));
    snapshot.top.queue.push(EntrySnapshot {
        task: "b".into(),
        data: json!(null),
        attempt: 0,
    });
    Checkpoint {
        run_id: "r1".into(),
        seq: 1,
        created_at: "2026-01-01T00:00:00Z".into(),
        reason: Reason::Deferred,
        task: Some("a".into()),
        workflow: WorkflowSource {
            name: "wf".into(),
            ..WorkflowSource::default()
        },
        metadata: Map::new(),
        snapshot,
        feedback: Vec::new(),
    }
}

/// The sample, its channel big enough that it is written compressed.
fn compressed() -> Vec<u8> {
    let mut ckpt = sample();
    let values = (0..200)
        .map(|i| {
            (
                format!("k{i}"),
                json!(format!("value {i} {}", "ab".repeat(i))),
            )
        })
        .collect();
    ckpt.snapshot.channel = graflow_engine::checkpoint::snapshot::ChannelContent::Values(values);
    let mut out = std::io::Cursor::new(Vec::new());
    let written = write_with(&mut out, &ckpt, None, Compression::Above(256)).unwrap();
    assert!(written.content_bytes.is_some());
    out.into_inner()
}

fn workflow() -> Arc<Workflow> {
    let mut wf = Workflow::builder("wf");
    let a = wf.task("a", |_c: TaskContext| async { anyhow::Ok(1) });
    let b = wf.task("b", |_c: TaskContext| async { anyhow::Ok(2) });
    wf.flow(a >> b);
    Arc::new(wf.build().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_truncation_is_refused(cut in 0usize..4096) {
        let bytes = encode(&sample()).unwrap();
        let cut = cut % bytes.len();
        prop_assert!(decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn every_bit_flip_is_refused(at in 0usize..4096, bit in 0u8..8) {
        let mut bytes = encode(&sample()).unwrap();
        let at = at % bytes.len();
        bytes[at] ^= 1 << bit;
        // A flip that turns the header into the same header is impossible; anything else is
        // a header that does not parse or does not match, or a CRC mismatch.
        prop_assert!(decode(&bytes).is_err(), "flip at {at}");
    }

    #[test]
    fn crafted_lengths_are_refused(len in any::<usize>(), extra in prop::collection::vec(any::<u8>(), 0..64)) {
        let good = encode(&sample()).unwrap();
        let nl = good.iter().position(|b| *b == b'\n').unwrap();
        let payload = &good[nl + 1..];
        let header = format!(
            r#"{{"format":"graflow-checkpoint","schema_version":1,"payload_bytes":{len},"crc32":"00000000"}}"#
        );
        let mut bytes = header.into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&extra);
        let out = decode(&bytes);
        prop_assert!(out.is_err());
        if len != payload.len() + extra.len() {
            let is_truncated = matches!(out, Err(CheckpointError::Truncated { .. }));
            prop_assert!(is_truncated);
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_compressed_checkpoint_is_refused(
        cut in 0usize..1 << 16, at in 0usize..1 << 16, bit in 0u8..8,
    ) {
        let bytes = compressed();
        prop_assert!(decode(&bytes).is_ok());
        prop_assert!(decode(&bytes[..cut % bytes.len()]).is_err());
        let mut flipped = bytes.clone();
        let at = at % flipped.len();
        flipped[at] ^= 1 << bit;
        prop_assert!(decode(&flipped).is_err(), "flip at {at}");
    }

    /// Stored bytes that pass their checks but are anything at all, announcing any length once
    /// decompressed: refused or decoded, never a panic or a runaway allocation.
    #[test]
    fn any_compressed_stream_is_refused_or_decoded(
        stored in prop::collection::vec(any::<u8>(), 0..512),
        content in any::<u64>(),
        from_real in any::<bool>(),
    ) {
        let stored = if from_real {
            let real = compressed();
            let nl = real.iter().position(|b| *b == b'\n').unwrap();
            let mut bytes = real[nl + 1..].to_vec();
            let n = stored.len().min(bytes.len());
            bytes[..n].copy_from_slice(&stored[..n]);
            bytes
        } else {
            stored
        };
        let header = format!(
            r#"{{"format":"graflow-checkpoint","schema_version":2,"payload_bytes":{},"crc32":"{:08x}","compression":"zstd","content_bytes":{content}}}"#,
            stored.len(),
            crc32fast::hash(&stored)
        );
        let mut bytes = header.into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&stored);
        let _ = decode(&bytes);
    }

    #[test]
    fn any_bytes_are_refused_or_decoded(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    /// A checkpoint resumes only with a valid run id and ids its workflow knows.
    #[test]
    fn crafted_ids_decide_resume(run_id in "\\PC{0,12}|[a-z0-9_/.-]{0,12}", task in "\\PC{0,8}|[a-z.]{1,3}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut snap = RunSnapshot::default();
        snap.dynamic.push(DynamicTask { id: task.clone(), spec: None });
        let resumed = rt.block_on(async {
            Engine::new()
                .resume(workflow(), &run_id, snap, None, "crafted", RunOptions::new())
                .map(|h| h.cancel("stop"))
        });
        if !valid_run_id(&run_id) {
            prop_assert!(resumed.is_err());
        }
        // The dynamic task is no definition of the workflow (unless it names one): refused.
        if task != "a" && task != "b" {
            prop_assert!(resumed.is_err());
        }
    }
}
