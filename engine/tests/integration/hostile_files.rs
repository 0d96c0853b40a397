//! Hostile workflow files and flow strings: any Unicode anywhere, deep nesting, random edits.
//! Loading never panics or overflows the stack; every refusal names a line and column.

use std::path::Path;

use graflow_engine::file::{Diagnostic, Severity, load_str};
use graflow_engine::handler::Runtimes;
use graflow_engine::limits::{MAX_FLOW_DEPTH, MAX_VALUE_DEPTH};
use graflow_engine::{Flow, parse_flow};
use proptest::prelude::*;

fn load(src: &str) -> Result<(), Vec<Diagnostic>> {
    load_str(src, Path::new("wf.ron"), &Runtimes::default())
        .map(|_| ())
        .map_err(|e| e.diagnostics)
}

fn first_error(src: &str) -> Diagnostic {
    load(src)
        .expect_err("refused")
        .into_iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error")
}

/// Characters that are valid Unicode but awkward: line and paragraph separators, NEL, marks,
/// zero-width and bidi controls, wide and astral characters.
const AWKWARD: &[char] = &[
    '\u{2028}',
    '\u{2029}',
    '\u{0085}',
    '\u{200E}',
    '\u{200F}',
    '\u{200B}',
    '\u{FEFF}',
    '\u{00A0}',
    '\u{3000}',
    '\u{202E}',
    '\u{0301}',
    'é',
    'İ',
    'ẞ',
    '日',
    '😀',
    '\u{10FFFF}',
];

#[test]
fn awkward_characters_before_fields_give_positions_not_panics() {
    for c in AWKWARD {
        // An error found after parsing (an unknown name in the flow) needs the position finder.
        for src in [
            format!(
                "Workflow(\n  name: \"x\",{c} flow: \"a >> zz\",\n  tasks: {{\"a\": Task(run: Value(1))}},\n)"
            ),
            format!(
                "Workflow(\n  name: \"x{c}\", // {c}{c}\n flow: \"a >> zz\", tasks: {{\"a\": Task(run: Value(1))}})"
            ),
            format!(
                "Workflow(name: \"x\", flow: \"a >> b\", tasks: {{\"a{c}\": Task(run: Value(1)), \"b\": Task(run: Value(\"{c}\"), timeout: \"3x{c}\")}})"
            ),
            format!(
                "{c}Workflow(name: \"x\", flow: \"a\", tasks: {{\"a\": Task(run: Script(\"let x = \\\"{c}\\\"; x +\"))}})"
            ),
            format!(
                "Workflow(name: \"x\", flow: \"a >> \\{c}zz\", tasks: {{\"a\": Task(run: Value(1))}})"
            ),
        ] {
            if let Err(diags) = load(&src) {
                assert!(!diags.is_empty(), "{src:?}");
            }
        }
    }
    let d = first_error(
        "Workflow(\n  name: \"x\",\u{2028} flow: \"a >> zz\",\n  tasks: {\"a\": Task(run: Value(1))},\n)",
    );
    assert!(d.message.contains("unknown task or group 'zz'"), "{d}");
    assert_eq!(d.line, 2);
}

#[test]
fn deep_flows_are_refused_with_their_place() {
    let deep = 50_000;
    let src = format!(
        "Workflow(name: \"x\", flow: \"{}a{}\", tasks: {{\"a\": Task(run: Value(1))}})",
        "(".repeat(deep),
        ")".repeat(deep)
    );
    let d = first_error(&src);
    assert!(d.message.contains("nested deeper than"), "{d}");
    assert_eq!(d.line, 1);
    assert!(d.column > 1, "{d}");
    // Group members too.
    let src = format!(
        "Workflow(name: \"x\", flow: \"g\", groups: {{\"g\": Group(members: \"{}a | b{}\")}}, tasks: {{\"a\": Task(run: Value(1)), \"b\": Task(run: Value(1))}})",
        "(".repeat(deep),
        ")".repeat(deep)
    );
    assert!(first_error(&src).message.contains("nested deeper than"));
}

#[test]
fn deep_values_are_refused_with_their_place() {
    for (open, close) in [("[", "]"), ("{\"k\": ", "}"), ("Some(", ")")] {
        let deep = 50_000;
        let src = format!(
            "Workflow(name: \"x\", flow: \"a\", tasks: {{\"a\": Task(run: Value({}1{}))}})",
            open.repeat(deep),
            close.repeat(deep)
        );
        let d = first_error(&src);
        assert!(d.message.contains("nested too deeply"), "{d}");
        assert!(d.line >= 1 && d.column > 1, "{d}");
    }
    let ok = format!(
        "Workflow(name: \"x\", flow: \"a\", tasks: {{\"a\": Task(run: Value({}1{}))}})",
        "[".repeat(50),
        "]".repeat(50)
    );
    assert!(load(&ok).is_ok());
}

/// The shape of a flow, for comparing trees.
fn shape(f: &Flow) -> String {
    match f {
        Flow::Leaf(l) => l.to_string(),
        Flow::Seq(items) => format!(
            "[{}]",
            items.iter().map(shape).collect::<Vec<_>>().join(" >> ")
        ),
        Flow::Par(p) => format!(
            "({})",
            p.items.iter().map(shape).collect::<Vec<_>>().join(" | ")
        ),
    }
}

fn arb_flow() -> impl Strategy<Value = Flow> {
    let leaf = prop::sample::select(vec!["a", "b", "c-1", "d.e", "ns:f", "é", "日本"])
        .prop_map(Flow::name);
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| x.then(y)),
            (inner.clone(), inner).prop_map(|(x, y)| x.par(y)),
        ]
    })
}

/// Whitespace the flow lexer must take as a space.
fn arb_space() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            ' ', '\t', '\u{000B}', '\u{000C}', '\r', '\u{0085}', '\u{00A0}', '\u{1680}',
            '\u{2000}', '\u{2007}', '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}',
            '\u{3000}',
        ]),
        0..3,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Printing a flow and reading it back gives the same tree.
    #[test]
    fn flows_round_trip_through_the_printer(flow in arb_flow()) {
        let text = flow.to_string();
        let parsed = parse_flow(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(shape(&parsed[0]), shape(&flow), "{}", text);
        prop_assert_eq!(parsed[0].to_string(), text);
    }

    /// Every Unicode whitespace but the newline separates tokens like a space.
    #[test]
    fn any_unicode_whitespace_is_a_space(flow in arb_flow(), sp in arb_space()) {
        let text = flow.to_string().replace(' ', &sp);
        let parsed = parse_flow(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(shape(&parsed[0]), shape(&flow));
    }

    /// Any text at all: an answer or an error, never a panic.
    #[test]
    fn any_flow_text_parses_or_errs(text in "\\PC{0,64}") {
        let _ = parse_flow(&text);
    }

    /// Nesting up to the limit parses; past it, an error.
    #[test]
    fn nesting_is_bounded(depth in 0usize..400) {
        let text = format!("{}a{}", "(".repeat(depth), ")".repeat(depth));
        prop_assert_eq!(parse_flow(&text).is_ok(), depth <= MAX_FLOW_DEPTH);
    }

    /// A valid file with any character inserted anywhere loads or is refused, never panics.
    #[test]
    fn files_with_any_character_anywhere_load_or_are_refused(
        at in 0usize..400,
        c in prop_oneof![prop::sample::select(AWKWARD.to_vec()), any::<char>()],
        also_bad in any::<bool>(),
    ) {
        let flow = if also_bad { "a >> nope" } else { "a >> b" };
        let base = format!("// {}\nWorkflow(\n  name: \"x\",\n  flow: \"{flow}\",\n  tasks: {{\n    \"a\": Task(run: Value([1, \"s\"]), timeout: \"1s\"),\n    \"b\": Task(run: Script(r#\"let v = 1; v\"#)),\n  }},\n)\n", "note");
        let chars: Vec<char> = base.chars().collect();
        let at = at % (chars.len() + 1);
        let src: String = chars[..at].iter().chain(std::iter::once(&c)).chain(chars[at..].iter()).collect();
        let _ = load(&src);
    }

    /// RON values of any depth: loaded up to the limit, refused past it.
    #[test]
    fn ron_values_of_any_depth(depth in 0usize..600) {
        let src = format!(
            "Workflow(name: \"x\", flow: \"a\", tasks: {{\"a\": Task(run: Value({}1{}))}})",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let loaded = load(&src);
        // RON counts two levels per array, and the task's own nesting too.
        if depth > MAX_VALUE_DEPTH {
            prop_assert!(loaded.is_err());
        }
        if depth <= 50 {
            prop_assert!(loaded.is_ok());
        }
    }
}
