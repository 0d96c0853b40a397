//! Pools, rate limits and queue limits in workflow files: they load, bad ones are refused with
//! the place (file, line, column) and a hint, never a panic; the rate parser reads back what
//! it writes and refuses everything else without panicking; a checkpoint taken while tasks
//! wait for a pool keeps them pending, and the resumed run waits for the pool again.

use std::path::Path;
use std::time::Duration;

use graflow_engine::file::{Diagnostic, LoadedWorkflow, Severity, load_str};
use graflow_engine::handler::Runtimes;
use graflow_engine::prelude::*;
use graflow_engine::{RateLimit, pool::RatePeriod};
use proptest::prelude::*;

fn load(src: &str) -> Result<LoadedWorkflow, Vec<Diagnostic>> {
    load_str(src, Path::new("wf.ron"), &Runtimes::default()).map_err(|e| e.diagnostics)
}

fn first_error(src: &str) -> Diagnostic {
    load(src)
        .err()
        .expect("the file is refused")
        .into_iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error")
}

const GOOD: &str = r#"Workflow(
    name: "limited",
    flow: "a >> (b | c) >> d",
    pools: {
        "openai": Pool(slots: 4, rate_limit: "10/s burst 5"),
        "db": Pool(slots: 20),
    },
    queues: {
        "gpu": Queue(rate_limit: "100/m"),
    },
    tasks: {
        "a": Task(run: Noop, pool: "openai"),
        "b": Task(run: Noop, pool: "openai", slots: 2, rate_limit: "5/s"),
        "c": Task(run: Noop, pool: "db", queue: "gpu"),
        "d": Task(run: Noop, rate_limit: "1/h"),
    },
)"#;

#[test]
fn pools_queues_and_rate_limits_load() {
    let loaded = load(GOOD).expect("loads");
    let wf = &loaded.workflow;
    assert_eq!(wf.pools()["openai"].slots, 4);
    let rate = wf.pools()["openai"].rate_limit.expect("rate");
    assert_eq!(
        (rate.count, rate.period, rate.burst),
        (10.0, RatePeriod::Second, 5)
    );
    assert_eq!(wf.pools()["db"].rate_limit, None);
    assert_eq!(
        wf.queues()["gpu"].rate_limit.map(|r| r.interval()),
        Some(Duration::from_millis(600))
    );
    let b = &wf.task("b").expect("b").options;
    assert_eq!((b.pool.as_deref(), b.slots), (Some("openai"), Some(2)));
    assert_eq!(b.rate_limit.map(|r| r.to_string()).as_deref(), Some("5/s"));
}

#[tokio::test]
async fn a_file_with_pools_runs() {
    let loaded = load(GOOD).expect("loads");
    let out = Engine::new()
        .run(loaded.workflow.clone(), RunOptions::new())
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
}

fn with(pools: &str, task: &str) -> String {
    format!(
        "Workflow(\n    name: \"x\",\n    flow: \"a\",\n    pools: {{{pools}}},\n    tasks: {{\n        \"a\": Task(run: Noop{task}),\n    }},\n)"
    )
}

#[test]
fn bad_pools_and_rates_are_refused_at_their_place() {
    let cases: [(String, &str, usize); 7] = [
        (
            with(r#""api": Pool(slots: 2)"#, r#", pool: "apj""#),
            "unknown pool 'apj'",
            6,
        ),
        (
            with(r#""api": Pool(slots: 2)"#, r#", pool: "api", slots: 3"#),
            "3 slots of pool 'api', which has 2",
            6,
        ),
        (
            with(r#""api": Pool(slots: 0)"#, ""),
            "pool 'api': a pool needs 1 to",
            4,
        ),
        (
            with(r#""api": Pool(slots: 2, rate_limit: "10/d")"#, ""),
            "pool 'api': rate_limit: '10/d'",
            4,
        ),
        (
            with("", r#", rate_limit: "fast""#),
            "task 'a': rate_limit: 'fast'",
            6,
        ),
        (with("", r#", slots: 2"#), "slots needs a pool", 6),
        (
            with(r#""api": Pool(slots: 2)"#, r#", pool: "api", slots: 0"#),
            "slots must be at least 1",
            6,
        ),
    ];
    for (src, message, line) in cases {
        let e = first_error(&src);
        assert!(
            e.message.contains(message),
            "{} (wanted {message})\n{src}",
            e.message
        );
        assert_eq!(e.line, line, "{}\n{src}", e.message);
        assert!(e.column > 0, "{e:?}");
        assert_eq!(e.file, Path::new("wf.ron"));
    }
    let e = first_error(&with(r#""api": Pool(slots: 2)"#, r#", pool: "apj""#));
    assert!(e.message.contains("did you mean 'api'"), "{}", e.message);
    let e = first_error(&with("", r#", rate_limit: "fast""#));
    assert!(
        e.hint.as_deref().is_some_and(|h| h.contains("10/s")),
        "{e:?}"
    );
    let e = first_error(
        "Workflow(name: \"x\", flow: \"a\", queues: {\"q\": Queue(rate_limit: \"0/s\")}, tasks: {\"a\": Task(run: Noop)})",
    );
    assert!(e.message.contains("queue 'q': rate_limit"), "{}", e.message);
    let e = first_error(
        "Workflow(name: \"x\", flow: \"a\", pools: {\"p\": Pool(slots: 1, size: 2)}, tasks: {\"a\": Task(run: Noop)})",
    );
    assert!(e.message.contains("size"), "{}", e.message);
}

proptest! {
    #[test]
    fn the_rate_parser_never_panics(text in "\\PC{0,24}") {
        let _ = text.parse::<RateLimit>();
    }

    #[test]
    fn the_rate_parser_never_panics_on_near_misses(
        count in "[0-9.eE+-]{0,8}",
        unit in "(s|m|h|d|sec|min|hour|)",
        burst in "( burst [0-9-]{0,12}| burst| [a-z]{1,5})?",
    ) {
        let _ = format!("{count}/{unit}{burst}").parse::<RateLimit>();
    }

    #[test]
    fn an_accepted_rate_has_a_usable_interval(
        count in "0?\\.?[0-9]{0,40}",
        unit in "(s|m|h)",
        burst in 1u32..2_000_000,
    ) {
        if let Ok(rate) = format!("{count}/{unit} burst {burst}").parse::<RateLimit>() {
            let interval = rate.interval();
            prop_assert!(!interval.is_zero());
            prop_assert!(interval < Duration::MAX);
            prop_assert!(rate.burst <= graflow_engine::pool::MAX_BURST);
        }
    }

    #[test]
    fn a_rate_reads_back_as_written(
        count in 1u32..1_000_000,
        period in prop_oneof![Just(RatePeriod::Second), Just(RatePeriod::Minute), Just(RatePeriod::Hour)],
        burst in 1u32..10_000,
    ) {
        let rate = RateLimit::new(f64::from(count), period, burst).expect("valid");
        let back: RateLimit = rate.to_string().parse().expect("reads back");
        prop_assert_eq!(back, rate);
        prop_assert!(!rate.interval().is_zero());
    }
}
