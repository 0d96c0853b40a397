//! Replays the checked-in fuzz corpora (`fuzz/corpus/<target>/*`, crashes found included)
//! through the fuzz targets' bodies, so `cargo test` keeps every input they found fixed.

use std::path::PathBuf;

use graflow_engine::fuzzing;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

fn replay(target: &str, body: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let outcome = std::panic::catch_unwind(|| body(&bytes));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn flow_parser_corpus() {
    replay("flow_parser", fuzzing::flow_parser);
}

#[test]
fn ron_loader_corpus() {
    replay("ron_loader", fuzzing::ron_loader);
}

#[test]
fn checkpoint_decode_corpus() {
    replay("checkpoint_decode", fuzzing::checkpoint_decode);
}

#[test]
fn ctx_protocol_corpus() {
    replay("ctx_protocol", fuzzing::ctx_protocol);
}

#[test]
fn feedback_answer_corpus() {
    replay("feedback_answer", fuzzing::feedback_answer);
}
