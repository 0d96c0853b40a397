//! Every complete example in `README.md` and `docs/` runs, so the docs cannot drift:
//!
//! - `ron` blocks holding a whole `Workflow(…)` load without errors and run with `graflow run`
//!   (exit 0, or the code a marker states). Fragments (task or group entries, a `groups:`
//!   field) are parsed inside a workflow, so their fields and kinds stay real; theme and config
//!   files parse as the studio reads them.
//! - `rhai` blocks run in a `Script` task.
//! - `sh` lines calling `graflow` on files of the repository run from its root (the comment on a
//!   line may say `exit N`); shell scripts for tasks (`graflow ctx …`, `$GRAFLOW_…`) run in a
//!   `Shell` task; `python` blocks run in a `Command` task (when `python3` is installed).
//! - `rust` blocks of the README and docs/embedding.md are doctests of `graflow-engine`;
//!   elsewhere a Rust block must be marked a fragment.
//! - `json`, `text`, `http` and untagged blocks show formats and output: they are not examples.
//!
//! A block is marked by an HTML comment on the line before its fence:
//! `<!-- example: validate-only — why -->` (load or compile, do not run), `<!-- example:
//! shape-only — why -->` (parse only), `<!-- example: fragment — why -->`, `<!-- example: skip —
//! why -->`; every marker must give its reason. Lines of `sh` blocks that cannot run here are
//! skipped only by the rules in [`SKIPS`], each with its reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use graflow::studio::config;
use graflow::studio::theme::Theme;
use graflow_engine::file;
use graflow_engine::handler::Runtimes;

/// `sh` lines that are not run, and why (a line is skipped when it contains the pattern).
const SKIPS: &[(&str, &str)] = &[
    ("cargo ", "builds and tests this repository; CI runs it"),
    (
        "graflow studio",
        "opens the studio, which needs a terminal: studio_pty.rs drives it",
    ),
    (
        "graflow serve",
        "a server that runs until stopped: cli_serve.rs tests it",
    ),
    (
        "curl ",
        "talks to graflow serve: cli_serve.rs tests the API",
    ),
    (
        " > /",
        "writes outside the repository (the command itself runs in cli_run.rs)",
    ),
    (
        " ID",
        "needs the id of a live request: cli_feedback.rs answers real ones",
    ),
    (
        "graflow resume ",
        "needs the path of a checkpoint of an earlier run: cli_checkpoints.rs resumes real ones",
    ),
    (
        "graflow ctx request-",
        "asks a person and waits for the answer: shell_hitl.rs answers real ones",
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    file: String,
    line: usize,
    lang: String,
    marker: Option<(String, String)>,
    text: String,
}

impl Block {
    fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The fenced blocks of a Markdown text, with the marker comment before each.
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let marker = start
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!-- example:"))
            .and_then(|m| m.strip_suffix("-->"))
            .map(|m| {
                let m = m.trim();
                let (kind, why) = m.split_once(' ').unwrap_or((m, ""));
                (
                    kind.to_string(),
                    why.trim_start_matches(['—', '-', ' ']).trim().to_string(),
                )
            });
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            body.push(lines[i]);
            i += 1;
        }
        out.push(Block {
            file: file.to_string(),
            line: start + 1,
            lang: lang.trim().to_string(),
            marker,
            text: body.join("\n"),
        });
        i += 1;
    }
    out
}

fn all_blocks() -> Vec<Block> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    docs.retain(|p| p.extension().is_some_and(|x| x == "md"));
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f.strip_prefix(repo()).unwrap_or(&f).display().to_string();
        out.extend(blocks(&name, &text));
    }
    out
}

/// Longest an example may take: one that waits longer (for a person, say) is killed and fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Run a command to its end, or kill it after [`PATIENCE`].
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `graflow args…` in `dir`, with its own state folder.
fn graflow(dir: &Path, state: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_graflow"));
    cmd.args(args)
        .current_dir(dir)
        .env("GRAFLOW_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    bounded(cmd)
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The text without its leading `//` comment lines and blank lines.
fn code_of(text: &str) -> &str {
    let mut rest = text;
    loop {
        let t = rest.trim_start();
        match t.strip_prefix("//") {
            Some(after) => rest = after.split_once('\n').map_or("", |(_, r)| r),
            None => return t,
        }
    }
}

/// Run a workflow text in a fresh folder; returns the exit code and what it said.
fn run_workflow(name: &str, text: &str, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    for (file, content) in extra {
        std::fs::write(dir.path().join(file), content).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = graflow(dir.path(), &dir.path().join("state"), &["run", name]);
    (out.status.code(), said(&out))
}

/// A fragment of a workflow file, parsed inside a minimal workflow.
fn parse_fragment(b: &Block) -> Result<(), String> {
    let code = code_of(&b.text);
    // A field (`groups: {…}`, `notify: […]`) goes in as a field; entries into their map. New
    // lines keep a trailing `// comment` from swallowing what follows.
    let field = code
        .split_once(':')
        .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'));
    let wrapped = if field {
        format!(
            "Workflow(name: \"fragment\", flow: \"x\",\n{}\n, tasks: {{}})",
            code.trim_end().trim_end_matches(',')
        )
    } else if code.contains("Group(") {
        format!("Workflow(name: \"fragment\", flow: \"x\", groups: {{\n{code}\n}}, tasks: {{}})")
    } else {
        format!("Workflow(name: \"fragment\", flow: \"x\", tasks: {{\n{code}\n}})")
    };
    file::parse(&wrapped)
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.span, e.code))
}

/// What a block is, and the check it gets; `Err` when the check fails.
fn check_block(b: &Block, ran: &mut Vec<String>) -> Result<(), String> {
    let marker = b.marker.as_ref().map(|(k, _)| k.as_str());
    if let Some((kind, why)) = &b.marker
        && why.is_empty()
    {
        return Err(format!("the marker `{kind}` gives no reason"));
    }
    if let Some((kind, why)) = &b.marker
        && kind != "fragment"
    {
        eprintln!("{}: {kind}: {why}", b.place());
    }
    if marker == Some("skip") {
        return Ok(());
    }
    match b.lang.as_str() {
        "ron" => check_ron(b, marker, ran),
        "rhai" => {
            let wf = format!(
                "Workflow(name: \"rhai\", flow: \"s\", tasks: {{\"s\": Task(run: Script(r####\"{}\"####))}})",
                b.text
            );
            file::load_str(&wf, Path::new("example.ron"), &Runtimes::default())
                .map_err(|e| e.to_string())?;
            if marker == Some("validate-only") {
                return Ok(());
            }
            ran.push(format!("{} (rhai)", b.place()));
            match run_workflow("rhai.ron", &wf, &[]) {
                (Some(0), _) => Ok(()),
                (code, text) => Err(format!("exit {code:?}: {text}")),
            }
        }
        "sh" => check_sh(b, ran),
        "python" => {
            if Command::new("python3").arg("--version").output().is_err() {
                eprintln!("{}: skipped: python3 is not installed here", b.place());
                return Ok(());
            }
            let wf = r#"Workflow(name: "python", flow: "py", tasks: {"py": Task(run: Command(["python3", "example.py"]))})"#;
            ran.push(format!("{} (python)", b.place()));
            match run_workflow("python.ron", wf, &[("example.py", &b.text)]) {
                (Some(0), _) => Ok(()),
                (code, text) => Err(format!("exit {code:?}: {text}")),
            }
        }
        // Doctests of graflow-engine (engine/src/lib.rs includes these two files).
        "rust" if b.file == "README.md" || b.file.ends_with("embedding.md") => Ok(()),
        "rust" if marker == Some("fragment") => Ok(()),
        "rust" => Err(
            "a Rust block outside the README and docs/embedding.md must be marked a fragment"
                .into(),
        ),
        _ => Ok(()), // formats and output, not examples
    }
}

fn check_ron(b: &Block, marker: Option<&str>, ran: &mut Vec<String>) -> Result<(), String> {
    let code = code_of(&b.text);
    if code.starts_with("Theme(") {
        return Theme::parse("example", &b.text).map(|_| ());
    }
    if code.starts_with('(') {
        return config::parse(&b.text).map(|_| ());
    }
    if !code.starts_with("Workflow(") {
        return parse_fragment(b);
    }
    if marker == Some("shape-only") {
        return file::parse(&b.text).map(|_| ()).map_err(|e| e.to_string());
    }
    file::load_str(&b.text, Path::new("example.ron"), &Runtimes::default())
        .map_err(|e| e.to_string())?;
    if marker == Some("validate-only") {
        return Ok(());
    }
    let expect = match marker.and_then(|m| m.strip_prefix("exit-")) {
        Some(n) => n
            .parse::<i32>()
            .map_err(|e| format!("marker exit-{n}: {e}"))?,
        None => 0,
    };
    ran.push(format!("{} (workflow)", b.place()));
    match run_workflow("example.ron", &b.text, &[]) {
        (Some(c), _) if c == expect => Ok(()),
        (code, text) => Err(format!("exit {code:?}, expected {expect}: {text}")),
    }
}

/// A line without its trailing `# comment` (outside quotes), and the comment.
fn split_comment(line: &str) -> (&str, &str) {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                return (line[..i].trim_end(), &line[i + 1..]);
            }
            _ => {}
        }
        prev = c;
    }
    (line.trim_end(), "")
}

fn check_sh(b: &Block, ran: &mut Vec<String>) -> Result<(), String> {
    // A script for a Shell task.
    let for_a_task = b.text.contains("graflow ctx") || b.text.contains("$GRAFLOW_");
    if for_a_task {
        if let Some((_, why)) = SKIPS.iter().find(|(p, _)| b.text.contains(p)) {
            eprintln!("{}: skipped: {why}", b.place());
            return Ok(());
        }
        let wf = format!(
            "Workflow(name: \"sh\", flow: \"sh\", tasks: {{\"sh\": Task(run: Shell(r####\"{}\"####))}})",
            b.text
        );
        ran.push(format!("{} (shell task)", b.place()));
        return match run_workflow("sh.ron", &wf, &[]) {
            (Some(0), _) => Ok(()),
            (code, text) => Err(format!("exit {code:?}: {text}")),
        };
    }
    // Command lines, run from the repository's root, one state folder per block.
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_graflow"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (k, raw) in b.text.lines().enumerate() {
        let (line, comment) = split_comment(raw);
        if !line.starts_with("graflow") {
            continue;
        }
        let place = format!("{}:{}", b.file, b.line + 1 + k);
        if let Some((_, why)) = SKIPS.iter().find(|(p, _)| line.contains(p)) {
            eprintln!("{place}: skipped: {why}");
            continue;
        }
        if line == "graflow" {
            eprintln!("{place}: skipped: opens the studio, which needs a terminal");
            continue;
        }
        // Every file it names must be in the repository: no placeholders.
        for word in line.split_whitespace().skip(2) {
            if word.ends_with(".ron") && !word.contains('*') && !repo().join(word).exists() {
                return Err(format!("{place}: {word} is not in the repository"));
            }
        }
        let expect = comment
            .split("exit ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<i32>().ok())
            .unwrap_or(0);
        // Checkpoints and history go to the block's state folder, never into the repository.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(line)
            .current_dir(repo())
            .env("PATH", &path)
            .env("GRAFLOW_STATE_DIR", state.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        let out = bounded(cmd);
        ran.push(place.clone());
        if out.status.code() != Some(expect) {
            return Err(format!(
                "{place}: `{line}` exited {:?}, expected {expect}: {}",
                out.status.code(),
                said(&out)
            ));
        }
    }
    Ok(())
}

#[test]
fn every_complete_example_in_the_docs_runs() {
    let blocks = all_blocks();
    assert!(blocks.len() > 40, "found only {} blocks", blocks.len());
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for b in &blocks {
        if let Err(e) = check_block(b, &mut ran) {
            failures.push(format!("{} ({}): {e}", b.place(), b.lang));
        }
    }
    eprintln!("ran {} examples:\n  {}", ran.len(), ran.join("\n  "));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran.len() >= 10, "ran only {ran:?}");
}

#[test]
fn markers_and_comments_are_read() {
    let text = "intro\n<!-- example: skip — needs Docker -->\n```ron\nWorkflow()\n```\n```sh\ngraflow checkpoints   # exit 0\n```\n";
    let b = blocks("x.md", text);
    assert_eq!(b.len(), 2);
    assert_eq!(
        b[0].marker,
        Some(("skip".to_string(), "needs Docker".to_string()))
    );
    assert_eq!(b[1].lang, "sh");
    assert_eq!(
        split_comment("graflow run 'a # b'  # exit 1"),
        ("graflow run 'a # b'", " exit 1")
    );
}
