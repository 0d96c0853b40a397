//! Property tests of checkpoint decoding: every truncation and every single bit flip of a
//! valid checkpoint is refused with a reason, crafted lengths are refused without a large
//! allocation, and ids read from a checkpoint decide whether it resumes — never a panic.

use std::sync::Arc;

use graflow_engine::checkpoint::file::{decode, encode};
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
