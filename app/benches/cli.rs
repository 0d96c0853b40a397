//! Benchmarks of the `graflow` binary end to end, one JSON line per workload (`workload`, `n`,
//! `seconds` = median wall time of one invocation, `per_item_us`):
//! `run_value3` — `graflow run` of a three-task Value workflow (target ≤ 10 ms);
//! `run_value3_json` — the same with `--json`; `validate_one` — `graflow validate` of it;
//! `run_group2000` / `run_group2000_json` — a 2,000-member group of `Noop` tasks with its
//! progress lines or its `--json` events read from a pipe (`json_overhead` = the ratio minus
//! one; target ≤ 0.3).
//!
//! Every invocation's standard output is a pipe this harness reads to the end.
//!
//! `cargo bench -p graflow --bench cli`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 21;

fn median_invocation(args: &[&str], dir: &Path) -> Duration {
    let mut samples: Vec<Duration> = (0..=RUNS)
        .map(|_| {
            let t0 = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_graflow"))
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .expect("graflow starts");
            assert!(out.status.success(), "graflow {args:?} failed");
            std::hint::black_box(out.stdout.len());
            t0.elapsed()
        })
        .skip(1)
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn report(workload: &str, d: Duration) {
    println!(
        "{{\"workload\":\"{workload}\",\"n\":1,\"seconds\":{},\"per_item_us\":{},\"runs\":{RUNS}}}",
        d.as_secs_f64(),
        d.as_secs_f64() * 1e6
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("graflow-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("three.ron"),
        r#"Workflow(name: "three", flow: "a >> b >> c", tasks: {
            "a": Task(run: Value(1)), "b": Task(run: Value([2, 3])), "c": Task(run: Value({"done": true})),
        })"#,
    )
    .expect("write workflow");
    report("run_value3", median_invocation(&["run", "three.ron"], &dir));
    report(
        "run_value3_json",
        median_invocation(&["run", "three.ron", "--json"], &dir),
    );
    report(
        "validate_one",
        median_invocation(&["validate", "three.ron"], &dir),
    );
    let members: Vec<String> = (0..2000).map(|i| format!("m{i}")).collect();
    let tasks: Vec<String> = members
        .iter()
        .map(|m| format!("\"{m}\": Task(run: Noop)"))
        .collect();
    std::fs::write(
        dir.join("group.ron"),
        format!(
            "Workflow(name: \"group\", flow: \"{}\", tasks: {{{}}})",
            members.join(" | "),
            tasks.join(", ")
        ),
    )
    .expect("write workflow");
    let plain = median_invocation(&["run", "group.ron"], &dir);
    let json = median_invocation(&["run", "group.ron", "--json"], &dir);
    report("run_group2000", plain);
    println!(
        "{{\"workload\":\"run_group2000_json\",\"n\":2000,\"seconds\":{},\"per_item_us\":{},\"runs\":{RUNS},\"json_overhead\":{:.3}}}",
        json.as_secs_f64(),
        json.as_secs_f64() * 1e6 / 2000.0,
        json.as_secs_f64() / plain.as_secs_f64() - 1.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
