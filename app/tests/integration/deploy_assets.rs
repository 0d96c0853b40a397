//! The deploy templates agree with each other: there is no Kubernetes cluster or systemd here,
//! so the manifest and the unit are parsed and checked against the compose file (which the
//! container tests start for real): the worker's and serve's commands (and the real CLI accepts
//! them), ports, probes, grace periods, images, Redis's arguments and resource limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name))
        .unwrap_or_else(|e| panic!("assets/deploy/{name}: {e}"))
}

/// `${NAME:-default}` → default, `${NAME:?message}` → a placeholder, `${NAME}` → empty: the
/// file as compose reads it with none of its variables set.
fn interpolate_defaults(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in compose.yaml"));
        let inner = &after[..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else if inner.contains(":?") {
            out.push_str("placeholder");
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn compose() -> Value {
    let mut v: Value = serde_yaml::from_str(&interpolate_defaults(&read("compose.yaml")))
        .unwrap_or_else(|e| panic!("compose.yaml: {e}"));
    v.apply_merge()
        .unwrap_or_else(|e| panic!("compose.yaml merge keys: {e}"));
    v
}

fn k8s() -> Vec<Value> {
    let text = read("k8s.yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("k8s.yaml: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn k8s_object(docs: &[Value], kind: &str, name: &str) -> Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("k8s.yaml has no {kind} {name}"))
}

fn first_container(workload: &Value) -> Value {
    workload["spec"]["template"]["spec"]["containers"][0].clone()
}

/// The systemd unit's `Key=value` lines (a key may repeat).
fn unit() -> Vec<(String, String)> {
    read("graflow-worker.service")
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn unit_value(unit: &[(String, String)], key: &str) -> String {
    unit.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(scalar)
        .collect()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// `--flag value` pairs of a command after its subcommand.
fn flags(args: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut it = args.iter().skip(1);
    while let Some(flag) = it.next() {
        assert!(
            flag.starts_with("--"),
            "expected a flag, got {flag:?} in {args:?}"
        );
        let value = it
            .next()
            .unwrap_or_else(|| panic!("{flag} has no value in {args:?}"));
        out.insert(flag.clone(), value.clone());
    }
    out
}

fn seconds(duration: &str) -> u64 {
    humantime::parse_duration(duration)
        .unwrap_or_else(|e| panic!("{duration}: {e}"))
        .as_secs()
}

/// Port of `host:port` or of a URL `http://host:port/path`.
fn port_of(addr: &str) -> u16 {
    let hostport = addr
        .trim_start_matches("http://")
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("");
    hostport
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// Path of `http://host:port/path`.
fn path_of(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    format!("/{}", rest.split_once('/').map(|(_, p)| p).unwrap_or(""))
}

/// The real CLI accepts these arguments (`--help` after them stops before anything runs).
fn assert_cli_accepts(args: &[String]) {
    let out = Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "graflow refuses {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The URL of a compose health check (`wget … URL`).
fn health_url(test: &[String]) -> String {
    test.iter()
        .find(|a| a.starts_with("http://"))
        .cloned()
        .unwrap_or_else(|| panic!("no URL in the health check {test:?}"))
}

#[test]
fn the_worker_runs_the_same_command_everywhere_and_the_cli_accepts_it() {
    let compose = compose();
    let docs = k8s();
    let unit = unit();

    let compose_cmd = strings(&compose["services"]["worker"]["command"]);
    let k8s_cmd =
        strings(&first_container(&k8s_object(&docs, "Deployment", "graflow-worker"))["args"]);
    assert_eq!(
        compose_cmd, k8s_cmd,
        "compose and Kubernetes run different worker commands"
    );
    assert_cli_accepts(&compose_cmd);

    // The unit: ExecStart with its Environment= defaults substituted, --redis aside.
    let env: BTreeMap<String, String> = unit
        .iter()
        .filter(|(k, _)| k == "Environment")
        .filter_map(|(_, v)| v.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut exec: Vec<String> = unit_value(&unit, "ExecStart")
        .split_whitespace()
        .map(|w| {
            let mut w = w.to_string();
            for (k, v) in &env {
                w = w.replace(&format!("${{{k}}}"), v);
            }
            w
        })
        .collect();
    assert_eq!(
        exec.first().map(String::as_str),
        Some("/usr/local/bin/graflow")
    );
    exec.remove(0);
    assert_cli_accepts(&exec);
    let mut unit_flags = flags(&exec);
    assert!(
        unit_flags.remove("--redis").is_some(),
        "the unit names its Redis"
    );
    assert_eq!(
        unit_flags,
        flags(&compose_cmd),
        "the unit's worker flags differ"
    );
}

#[test]
fn probes_ports_and_grace_periods_agree() {
    let compose = compose();
    let docs = k8s();
    let unit = unit();
    let worker = &compose["services"]["worker"];
    let cmd = flags(&strings(&worker["command"]));
    let metrics_port = port_of(&cmd["--metrics-addr"]);

    // Health: compose's check and Kubernetes's readiness probe ask the metrics server's /healthz.
    let url = health_url(&strings(&worker["healthcheck"]["test"]));
    assert_eq!(port_of(&url), metrics_port);
    assert_eq!(path_of(&url), "/healthz");
    let deployment = k8s_object(&docs, "Deployment", "graflow-worker");
    let c = first_container(&deployment);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(scalar(&c[probe]["httpGet"]["path"]), "/healthz", "{probe}");
        assert_eq!(
            scalar(&c[probe]["httpGet"]["port"]),
            metrics_port.to_string(),
            "{probe}"
        );
    }
    assert_eq!(
        scalar(&c["ports"][0]["containerPort"]),
        metrics_port.to_string()
    );
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        scalar(&annotations["prometheus.io/port"]),
        metrics_port.to_string()
    );

    // The preStop hook drains (SIGTERM, then waits for the exit).
    let pre_stop = strings(&c["lifecycle"]["preStop"]["exec"]["command"]).join(" ");
    assert!(
        pre_stop.contains("kill -TERM 1") && pre_stop.contains("kill -0 1"),
        "{pre_stop}"
    );

    // Grace: the same stop timeout everywhere, longer than the worker's own --grace.
    let stop = seconds(&scalar(&worker["stop_grace_period"]));
    let k8s_stop: u64 =
        scalar(&deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stop, k8s_stop);
    assert_eq!(unit_value(&unit, "TimeoutStopSec"), stop.to_string());
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
    assert!(
        stop > seconds(&cmd["--grace"]),
        "Docker would SIGKILL before the drain ends"
    );

    // Limits: 1 CPU and 512 MiB per worker.
    assert_eq!(scalar(&worker["mem_limit"]), "512m");
    assert_eq!(scalar(&c["resources"]["limits"]["memory"]), "512Mi");
    assert_eq!(unit_value(&unit, "MemoryMax"), "512M");
    assert_eq!(scalar(&worker["cpus"]).parse::<f64>().ok(), Some(1.0));
    assert_eq!(scalar(&c["resources"]["limits"]["cpu"]), "1");
    assert_eq!(unit_value(&unit, "CPUQuota"), "100%");
}

#[test]
fn redis_serve_and_images_agree() {
    let compose = compose();
    let docs = k8s();
    let services = &compose["services"];

    // Redis: the same arguments (AOF on), its data on a volume at /data, the same health check.
    let redis_args = strings(&services["redis"]["command"]);
    let sts = k8s_object(&docs, "StatefulSet", "redis");
    let rc = first_container(&sts);
    assert_eq!(redis_args, strings(&rc["args"]));
    let joined = redis_args.join(" ");
    assert!(
        joined.contains("--appendonly yes") && joined.contains("--dir /data"),
        "{joined}"
    );
    assert!(
        strings(&services["redis"]["volumes"])
            .iter()
            .any(|v| v.ends_with(":/data"))
    );
    assert_eq!(scalar(&rc["volumeMounts"][0]["mountPath"]), "/data");
    let check = strings(&services["redis"]["healthcheck"]["test"]);
    assert_eq!(
        &check[1..],
        strings(&rc["readinessProbe"]["exec"]["command"]).as_slice()
    );

    // Everyone reaches Redis by the same name and port.
    let backend = scalar(&services["worker"]["environment"]["GRAFLOW_BACKEND"]);
    assert_eq!(backend, "redis://redis:6379");
    assert_eq!(
        scalar(&services["serve"]["environment"]["GRAFLOW_BACKEND"]),
        backend
    );
    let svc = k8s_object(&docs, "Service", "redis");
    assert_eq!(
        scalar(&svc["spec"]["ports"][0]["port"]),
        port_of(&backend).to_string()
    );
    for name in ["graflow-worker", "graflow-serve"] {
        let c = first_container(&k8s_object(&docs, "Deployment", name));
        let env = c["env"].as_sequence().cloned().unwrap_or_default();
        let value = env
            .iter()
            .find(|e| e["name"].as_str() == Some("GRAFLOW_BACKEND"))
            .map(|e| scalar(&e["value"]));
        assert_eq!(value.as_deref(), Some(backend.as_str()), "{name}");
    }

    // Serve: one port for its command, its probe, its container and its Service.
    let serve_cmd = strings(&services["serve"]["command"]);
    assert_cli_accepts(&serve_cmd);
    let k8s_serve = first_container(&k8s_object(&docs, "Deployment", "graflow-serve"));
    assert_eq!(serve_cmd, strings(&k8s_serve["args"]));
    let port = port_of(&flags(&serve_cmd)["--addr"]);
    let url = health_url(&strings(&services["serve"]["healthcheck"]["test"]));
    assert_eq!((port_of(&url), path_of(&url).as_str()), (port, "/health"));
    assert_eq!(
        scalar(&k8s_serve["readinessProbe"]["httpGet"]["path"]),
        "/health"
    );
    assert_eq!(
        scalar(&k8s_serve["readinessProbe"]["httpGet"]["port"]),
        port.to_string()
    );
    assert_eq!(
        scalar(&k8s_serve["ports"][0]["containerPort"]),
        port.to_string()
    );
    let serve_svc = k8s_object(&docs, "Service", "graflow-serve");
    assert_eq!(
        scalar(&serve_svc["spec"]["ports"][0]["targetPort"]),
        port.to_string()
    );
    assert!(
        strings(&services["serve"]["ports"])
            .iter()
            .all(|p| p.starts_with("127.0.0.1:"))
    );

    // Images: the ones build-images.sh makes.
    assert_eq!(scalar(&services["worker"]["image"]), "graflow:latest");
    assert_eq!(scalar(&services["serve"]["image"]), "graflow:latest");
    assert_eq!(scalar(&services["redis"]["image"]), "graflow-redis:latest");
    assert_eq!(scalar(&rc["image"]), "graflow-redis:latest");
    for name in ["graflow-worker", "graflow-serve"] {
        let c = first_container(&k8s_object(&docs, "Deployment", name));
        assert_eq!(scalar(&c["image"]), "graflow:latest", "{name}");
    }
    let script = read("build-images.sh");
    assert!(script.contains("\"graflow:$tag\"") && script.contains("\"graflow-redis:$tag\""));
}
