//! The bodies of the fuzz targets (`fuzz/`), here so that `cargo test` replays the checked-in
//! corpora through exactly the same code (`engine/tests/fuzz_corpus.rs`). Each takes any
//! bytes and must return without panicking; a broken invariant panics on purpose.

use std::path::Path;
use std::sync::OnceLock;

use crate::checkpoint::file::decode;
use crate::handler::Runtimes;
use crate::handler::process::protocol::{ArgKind, Op, Request, Response, arg_from_word};
use crate::hitl::{Answer, FeedbackKind, FeedbackRequest, FeedbackSpec, FeedbackStatus};

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Parse a flow; what parses must print back to text that parses to the same tree.
pub fn flow_parser(data: &[u8]) {
    let src = text(data);
    let Ok(statements) = crate::parse_flow(&src) else {
        return;
    };
    for s in statements {
        let printed = s.to_string();
        let again = match crate::parse_flow(&printed) {
            Ok(a) => a,
            Err(e) => panic!("printed flow {printed:?} does not parse: {e}"),
        };
        assert_eq!(again.len(), 1, "{printed:?}");
        assert_eq!(again[0].to_string(), printed, "round trip of {src:?}");
    }
}

/// Load a workflow file.
pub fn ron_loader(data: &[u8]) {
    static RUNTIMES: OnceLock<Runtimes> = OnceLock::new();
    let runtimes = RUNTIMES.get_or_init(Runtimes::default);
    let _ = crate::file::load_str(&text(data), Path::new("fuzz.ron"), runtimes);
}

/// Decode a checkpoint and read everything a listing or a resume reads first.
pub fn checkpoint_decode(data: &[u8]) {
    if let Ok(ckpt) = decode(data) {
        let _ = ckpt.snapshot.pending();
        let _ = ckpt.snapshot.channel.values();
        let _ = crate::run::valid_run_id(&ckpt.run_id);
    }
}

/// Parse a request line and check its operation; parse a response line; read words.
pub fn ctx_protocol(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        let _ = Op::parse(&request.op, request.args);
    }
    let line = text(data);
    let _ = Response::parse(&line);
    for kind in [
        ArgKind::Name,
        ArgKind::Value,
        ArgKind::Text,
        ArgKind::Number,
    ] {
        let _ = arg_from_word(kind, &line);
    }
}

/// Read an answer and check it against a request of every kind.
pub fn feedback_answer(data: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Answer>(data) else {
        return;
    };
    for kind in [
        FeedbackKind::Approval,
        FeedbackKind::Text,
        FeedbackKind::Selection,
        FeedbackKind::MultiSelection,
        FeedbackKind::Custom,
    ] {
        let request = FeedbackRequest {
            id: "f".into(),
            run_id: "r".into(),
            task: "t".into(),
            workflow: "w".into(),
            spec: FeedbackSpec::new(kind, "?").options(vec!["a".into(), "b".into()]),
            status: FeedbackStatus::Pending,
            created_at: String::new(),
            timed_out_at: None,
            checkpoint: None,
        };
        if let Ok(response) = request.accept(answer.clone(), "now".into()) {
            let _ = response.value();
        }
    }
}
