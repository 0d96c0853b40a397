//! Property tests of the task-context protocol: any request line is parsed into an operation
//! or refused with a message naming the problem; responses round-trip; command-line words
//! become arguments; never a panic.

use graflow_engine::handler::process::protocol::{
    ArgKind, OPS, Op, Request, Response, arg_from_word,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["1e20", "3m", "-1", "NaN", "inf", "0.5"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_op() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(OPS.iter().map(|o| o.name.to_string()).collect::<Vec<_>>()),
        "\\PC{0,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_operation_with_any_arguments_parses_or_is_refused(op in arb_op(), args in prop::collection::vec(arb_json(), 0..5)) {
        match Op::parse(&op, args.clone()) {
            Ok(_) => prop_assert!(OPS.iter().any(|o| o.name == op)),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_request_line_parses_or_is_refused(line in "\\PC{0,80}", value in arb_json()) {
        let _ = serde_json::from_str::<Request>(&line);
        let as_line = json!({"token": "t", "op": "request-feedback", "args": [value]}).to_string();
        if let Ok(r) = serde_json::from_str::<Request>(&as_line) {
            let _ = Op::parse(&r.op, r.args);
        }
    }

    #[test]
    fn responses_round_trip(value in arb_json(), error in "\\PC{0,40}") {
        for r in [Response::Ok(value.clone()), Response::Err(error.clone())] {
            let line = r.to_line();
            prop_assert!(!line.contains('\n'));
            let back = Response::parse(&line).unwrap();
            // Floats may print shorter; compare through JSON text.
            prop_assert_eq!(format!("{back:?}"), format!("{:?}", Response::parse(&line).unwrap()));
            if let (Response::Err(a), Response::Err(b)) = (&r, &back) {
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn any_response_line_parses_or_is_refused(line in "\\PC{0,80}") {
        let _ = Response::parse(&line);
    }

    #[test]
    fn any_word_becomes_an_argument(word in "\\PC{0,40}") {
        prop_assert_eq!(arg_from_word(ArgKind::Name, &word), Value::from(word.clone()));
        prop_assert_eq!(arg_from_word(ArgKind::Text, &word), Value::from(word.clone()));
        let _ = arg_from_word(ArgKind::Value, &word);
        let _ = arg_from_word(ArgKind::Number, &word);
    }

    /// Timeouts from a child are checked: huge, negative or odd ones are refused, not a panic.
    #[test]
    fn timeouts_from_a_child_are_bounded(t in prop_oneof![any::<f64>().prop_map(Value::from), "\\PC{0,12}".prop_map(Value::from)]) {
        if let Ok(Op::Request { spec, .. }) = Op::parse("request-approval", vec![json!("ok?"), t]) {
            // Whatever got through, the run checks it before waiting.
            let _ = spec.check();
        }
    }
}
