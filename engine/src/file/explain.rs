//! RON parse errors in the workflow file's words: every message names what the file writes
//! (`retries: (max: 3)`, `Task(…)`, "task kind") instead of the parser's types (`RetrySpec`,
//! `enum 'RunSpec'`), points where the fix goes (a missing comma: after the value it
//! follows, not at the next line), and comes with a hint.

use ron::error::{Error, SpannedError};

use crate::suggest;

/// Every task kind, with how it is written (the one list hints and docs draw from).
pub const TASK_KINDS: &[(&str, &str)] = &[
    ("Value", "Value(<any value>)"),
    ("Noop", "Noop"),
    ("Sleep", "Sleep(\"1s\")"),
    ("Shell", "Shell(\"echo hi\")"),
    ("Command", "Command([\"prog\", \"arg\"])"),
    ("Script", "Script(\"…rhai…\") or Script(file: \"x.rhai\")"),
    ("Http", "Http(url: \"http://…\")"),
    ("Docker", "Docker(image: \"…\")"),
    ("Approval", "Approval(prompt: \"…\")"),
    ("Feedback", "Feedback(kind: Text, prompt: \"…\")"),
    ("Workflow", "Workflow(file: \"sub.ron\")"),
];

/// Every group policy, with how it is written.
pub const POLICIES: &[(&str, &str)] = &[
    ("Strict", "Strict"),
    ("BestEffort", "BestEffort"),
    ("AtLeast", "AtLeast(2)"),
    ("Critical", "Critical([\"a\", \"b\"])"),
    ("Custom", "Custom(\"…rhai expression…\")"),
];

/// Other variants that carry a value, with how they are written.
const OTHER_VARIANTS: &[(&str, &str)] = &[
    ("Redis", "Redis(url: \"redis://127.0.0.1:6379\")"),
    ("Webhook", "Webhook(url: \"http://…\")"),
];

/// How the parser's type names read in the file.
const TYPE_WORDS: &[(&str, &str)] = &[
    ("WorkflowSpec", "Workflow(…)"),
    ("Workflow", "Workflow(…)"),
    ("TaskSpec", "Task(…)"),
    ("Task", "Task(…)"),
    ("GroupSpec", "Group(…)"),
    ("Group", "Group(…)"),
    ("PoolSpec", "Pool(…)"),
    ("Pool", "Pool(…)"),
    ("QueueSpec", "Queue(…)"),
    ("Queue", "Queue(…)"),
    ("RetrySpec", "retries: (…)"),
    ("HttpSpec", "Http(…)"),
    ("DockerSpec", "Docker(…)"),
    ("ApprovalSpec", "Approval(…)"),
    ("FeedbackTaskSpec", "Feedback(…)"),
    ("WorkflowTaskSpec", "Workflow(…)"),
    ("SubChannel", "sub-workflow channel (Own or Shared)"),
    ("WebhookSpec", "Webhook(…)"),
    ("ScriptSpec", "Script(…)"),
    ("RunSpec", "task kind"),
    ("PolicySpec", "group policy"),
    ("AnswerKind", "feedback kind"),
    ("ChannelSpec", "channel"),
    ("BackendSpec", "backend"),
    ("NotifySpec", "notifier"),
];

/// Fields whose values are durations.
const DURATIONS: &[&str] = &["timeout", "backoff", "max_backoff"];

/// A parse error, explained: where (1-based line and column), what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, in the file's words.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Explain a RON error found in `source`.
pub fn explain(source: &str, e: &SpannedError) -> Explained {
    let at = offset_of(source, e.span.start.line, e.span.start.col);
    let (mut line, mut column) = (e.span.start.line, e.span.start.col);
    let before = &source[..at];
    let word = last_word(before);
    let key = last_key(before);
    // At the end of the text, or at its very last closing bracket: something is left open.
    let ends_here = code_after(source, at).is_none_or(|i| {
        matches!(source[i..].chars().next(), Some(')' | ']' | '}'))
            && code_after(source, i + 1).is_none()
    });
    let (message, hint) = match &e.code {
        Error::ExpectedComma | Error::Eof | Error::ExpectedStructLikeEnd if ends_here => (
            "the file ends before every `(`, `[` and `{` is closed".to_string(),
            "add the missing `)`, `]` or `}` at the end".to_string(),
        ),
        Error::ExpectedComma => {
            // Point just after the value the comma should follow.
            let end = end_of_code(before);
            (line, column) = line_col(source, end);
            (
                "a comma is missing after this value".to_string(),
                "separate fields and entries with commas: `name: \"etl\", flow: \"a >> b\"`"
                    .to_string(),
            )
        }
        Error::ExpectedNamedStructLike(name) => {
            let written = words_for(name);
            let example = match *name {
                "RetrySpec" => "retries: (max: 3)".to_string(),
                _ => example_of(name).unwrap_or_else(|| written.clone()),
            };
            let written = if *name == "RetrySpec" {
                "retries".to_string()
            } else {
                written
            };
            (
                format!("`{written}` is written with its fields in parentheses: `{example}`"),
                match *name {
                    "RetrySpec" => "`max` (retries after the first attempt) is required; `backoff`, `factor`, `max_backoff` and `jitter` are optional: `retries: (max: 3, backoff: \"500ms\")`".to_string(),
                    _ => format!("write `{example}`"),
                },
            )
        }
        Error::ExpectedStructLike | Error::ExpectedIdentifier => match word.and_then(example_of) {
            Some(example) => (
                format!("`{}` is written `{example}`", word.unwrap_or_default()),
                format!("write `{example}`"),
            ),
            None => (
                "expected `(` with fields here".to_string(),
                "structures are written `Name(field: value, …)`".to_string(),
            ),
        },
        Error::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => {
            let what = outer.as_deref().map_or("value".to_string(), words_for);
            let guess = suggest::did_you_mean(found, expected.iter().copied())
                .map(|g| format!("; {}", g.replace('\'', "`")))
                .unwrap_or_default();
            (
                format!("unknown {what} `{found}`{guess}"),
                match outer.as_deref() {
                    Some("RunSpec") => format!("the task kinds: {}", listing(TASK_KINDS)),
                    Some("PolicySpec") => format!("the policies: {}", listing(POLICIES)),
                    _ => format!("one of: {}", expected.join(", ")),
                },
            )
        }
        Error::NoSuchStructField {
            expected,
            found,
            outer,
        } => {
            let what = outer.as_deref().map_or("here".to_string(), words_for);
            let guess = suggest::did_you_mean(found, expected.iter().copied())
                .map(|g| format!("; {}", g.replace('\'', "`")))
                .unwrap_or_default();
            (
                format!("unknown field `{found}` in {what}{guess}"),
                format!("the fields of {what}: {}", expected.join(", ")),
            )
        }
        Error::MissingStructField { field, outer } => {
            let what = outer.as_deref().map_or("this".to_string(), words_for);
            (
                format!("{what} needs `{field}`"),
                "every workflow needs `name`, `flow` and `tasks`; every task needs `run`; `retries` needs `max`".to_string(),
            )
        }
        Error::DuplicateStructField { field, outer } => {
            let what = outer.as_deref().map_or("here".to_string(), words_for);
            (
                format!("`{field}` is written twice in {what}"),
                "keep one of them".to_string(),
            )
        }
        Error::ExpectedDifferentStructName { expected, found } => (
            format!("expected `{}` here, found `{found}`", words_for(expected)),
            "a workflow file starts with `Workflow(`; tasks are written `Task(run: …)`, groups `Group(members: …)`".to_string(),
        ),
        Error::ExpectedString | Error::ExpectedStringEnd => {
            let is_duration = key.is_some_and(|k| DURATIONS.contains(&k));
            let variant = word.filter(|w| example_of(w).is_some());
            (
                match (&e.code, variant, key) {
                    (Error::ExpectedStringEnd, _, _) => "a string is not closed".to_string(),
                    (_, Some(w), _) | (_, None, Some(w)) => {
                        format!("`{w}` takes text in double quotes")
                    }
                    _ => "expected text in double quotes".to_string(),
                },
                if is_duration {
                    format!(
                        "durations are strings with a unit: `{}: \"30s\"`",
                        key.unwrap_or("timeout")
                    )
                } else if let Some(w) = word.and_then(example_of) {
                    format!("write `{w}`")
                } else {
                    "write it in double quotes: `\"…\"` (or a raw string `r#\"…\"#`)".to_string()
                },
            )
        }
        Error::ExpectedInteger | Error::ExpectedFloat | Error::IntegerOutOfBounds => (
            match key {
                Some(k) => format!("`{k}` takes a number"),
                None => "expected a number".to_string(),
            },
            "write a plain number, like `3` (no quotes)".to_string(),
        ),
        Error::ExpectedBoolean => (
            "expected `true` or `false`".to_string(),
            "write `true` or `false` (no quotes)".to_string(),
        ),
        Error::ExpectedMap | Error::ExpectedMapEnd | Error::ExpectedMapColon => (
            match &e.code {
                Error::ExpectedMapColon => "expected `:` after the key".to_string(),
                Error::ExpectedMapEnd => "expected `}` to close the map".to_string(),
                _ => match key {
                    Some(k) => format!("`{k}` is a map in braces"),
                    None => "expected `{` (a map)".to_string(),
                },
            },
            "maps are written `{\"key\": value, …}`, like `tasks: {\"a\": Task(run: Noop)}`"
                .to_string(),
        ),
        Error::ExpectedArray | Error::ExpectedArrayEnd => (
            match key {
                Some(k) => format!("`{k}` is a list in brackets"),
                None => "expected a list in brackets".to_string(),
            },
            "lists are written `[\"a\", \"b\"]`".to_string(),
        ),
        Error::TrailingCharacters => (
            "something follows the end of `Workflow(…)`".to_string(),
            "a file holds one `Workflow(…)`; remove what comes after its closing `)`".to_string(),
        ),
        Error::UnexpectedChar(c) => (
            format!("unexpected `{c}`"),
            "check the punctuation here: fields are `name: value`, separated by commas"
                .to_string(),
        ),
        Error::InvalidValueForType { expected, found } => (
            format!(
                "{}expected {}, found {}",
                key.map(|k| format!("`{k}`: ")).unwrap_or_default(),
                in_file_words(expected),
                in_file_words(found)
            ),
            if key.is_some_and(|k| DURATIONS.contains(&k)) {
                "durations are strings with a unit: `\"30s\"`".to_string()
            } else {
                "see how the field is written in the docs' workflow format".to_string()
            },
        ),
        Error::Message(m) if m.contains("untagged enum ScriptSpec") => (
            "`Script` takes its code in a string or a file".to_string(),
            "write `Script(\"…rhai…\")` or `Script(file: \"x.rhai\")`".to_string(),
        ),
        Error::ExceededRecursionLimit => (
            format!(
                "values nested too deeply (a workflow file may nest {} levels, each RON value \
                 counting one or two)",
                crate::limits::MAX_VALUE_DEPTH
            ),
            "flatten the value, or keep it in a JSON file the task reads".to_string(),
        ),
        other => (
            in_file_words(&other.to_string()),
            "check the syntax here; a workflow reads `Workflow(name: \"x\", flow: \"a >> b\", tasks: {\"a\": Task(run: Noop), …})`".to_string(),
        ),
    };
    Explained {
        line,
        column,
        message,
        hint,
    }
}

/// The file's words for a parser type name.
fn words_for(name: &str) -> String {
    TYPE_WORDS
        .iter()
        .find(|(t, _)| *t == name)
        .map_or_else(|| name.to_string(), |(_, w)| w.to_string())
}

/// A message with every parser type name replaced by the file's words.
fn in_file_words(message: &str) -> String {
    let mut out = message.to_string();
    for (t, w) in TYPE_WORDS
        .iter()
        .filter(|(t, _)| t.ends_with("Spec") || *t == "AnswerKind")
    {
        out = out.replace(&format!("`{t}`"), &format!("`{w}`"));
        out = out.replace(t, w);
    }
    out
}

/// How a variant that carries a value is written, by its name.
fn example_of(name: &str) -> Option<String> {
    TASK_KINDS
        .iter()
        .chain(POLICIES)
        .chain(OTHER_VARIANTS)
        .find(|(n, _)| *n == name)
        .map(|(_, ex)| ex.to_string())
}

fn listing(list: &[(&str, &str)]) -> String {
    list.iter()
        .map(|(_, ex)| *ex)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The byte offset of a 1-based line and character column.
fn offset_of(source: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    source.len()
}

/// The 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// A line with its `//` comment cut (a `//` inside a string does not count).
fn without_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_string = !in_string,
            '/' if !in_string && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

/// Where the code before `text`'s end ends: whitespace and line comments skipped backwards.
fn end_of_code(text: &str) -> usize {
    let mut end = text.len();
    loop {
        let t = text[..end].trim_end();
        let line_start = t.rfind('\n').map_or(0, |i| i + 1);
        let code = without_comment(&t[line_start..]).trim_end();
        if !code.is_empty() || line_start == 0 {
            return line_start + code.len();
        }
        end = line_start - 1;
    }
}

/// The first code character at or after `at` (comments and whitespace skipped).
fn code_after(source: &str, at: usize) -> Option<usize> {
    let mut rest = &source[at.min(source.len())..];
    let mut base = at.min(source.len());
    loop {
        let trimmed = rest.trim_start();
        base += rest.len() - trimmed.len();
        if let Some(after) = trimmed.strip_prefix("//") {
            let skip = after.find('\n').map_or(after.len(), |i| i + 1) + 2;
            base += skip;
            rest = &trimmed[skip.min(trimmed.len())..];
            continue;
        }
        return (!trimmed.is_empty()).then_some(base);
    }
}

/// Where the identifier that ends `t` starts: just after the last character that cannot be in
/// one (a byte index at a character boundary, whatever that character's width).
fn word_start(t: &str) -> usize {
    t.char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// The identifier just before `text`'s end (skipping spaces and one `(`): `Http(` → `Http`.
fn last_word(text: &str) -> Option<&str> {
    let t = text.trim_end();
    let t = t.strip_suffix('(').unwrap_or(t).trim_end();
    let w = &t[word_start(t)..];
    (!w.is_empty()).then_some(w)
}

/// The field name of the value being read: the last `name:` before `text`'s end.
fn last_key(text: &str) -> Option<&str> {
    let t = text.trim_end();
    let t = t.strip_suffix('(').unwrap_or(t).trim_end();
    // Skip back over a partial value on this field (`Shell(ls` → `Shell`).
    let colon = t.rfind(':')?;
    let head = t[..colon].trim_end();
    let k = &head[word_start(head)..];
    (!k.is_empty() && !t[colon + 1..].contains(',')).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_after_wide_characters_are_found_whole() {
        for sep in ['\u{2028}', '\u{0085}', '\u{200E}', '、', '😀', ' '] {
            assert_eq!(last_word(&format!("x,{sep}flow")), Some("flow"));
            assert_eq!(last_word(&format!("{sep}Http(")), Some("Http"));
            assert_eq!(last_key(&format!("a{sep}timeout: 3")), Some("timeout"));
        }
        assert_eq!(last_word("é"), Some("é"));
        assert_eq!(last_word("😀"), None);
    }

    fn explain_src(src: &str) -> Explained {
        let e = crate::file::parse(src).expect_err("a parse error");
        explain(src, &e)
    }

    #[test]
    fn a_missing_comma_points_after_the_value() {
        let e =
            explain_src("Workflow(\n  name: \"x\",\n  flow: \"a\"  // the flow\n  tasks: {},\n)");
        assert_eq!((e.line, e.column), (3, 12), "{e:?}");
        assert!(e.message.contains("comma is missing after this value"));
    }

    #[test]
    fn an_unclosed_file_says_it_ends_early() {
        let e = explain_src("Workflow(name: \"x\", flow: \"a\", tasks: {\"a\": Task(run: Noop)}");
        assert!(e.message.contains("ends before"), "{e:?}");
    }

    #[test]
    fn parser_types_never_show() {
        for src in [
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, retries: 3)})"#,
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Bash("ls"))})"#,
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Http("http://x"))})"#,
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, retries: (max: 1, backof: "1s"))})"#,
            r#"Workflow(name: "x", flow: "g", groups: {"g": Group(members: "a", policy: Majority)}, tasks: {"a": Task(run: Noop)})"#,
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Feedback(kind: Choice, prompt: "p"))})"#,
        ] {
            let e = explain_src(src);
            let all = format!("{} {}", e.message, e.hint);
            for t in [
                "RetrySpec",
                "RunSpec",
                "HttpSpec",
                "PolicySpec",
                "AnswerKind",
                "enum",
            ] {
                assert!(!all.contains(t), "{src}: {all}");
            }
        }
        let e = explain_src(
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, retries: 3)})"#,
        );
        assert!(e.message.contains("`retries: (max: 3)`"), "{e:?}");
    }

    #[test]
    fn the_kind_hint_lists_every_kind() {
        let e =
            explain_src(r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: shell("ls"))})"#);
        assert!(
            e.message
                .contains("unknown task kind `shell`; did you mean `Shell`?"),
            "{e:?}"
        );
        for (kind, _) in TASK_KINDS {
            assert!(e.hint.contains(kind), "{kind} missing from {}", e.hint);
        }
        assert_eq!(TASK_KINDS.len(), 11);
    }

    #[test]
    fn strings_and_durations_get_examples() {
        let e = explain_src(
            r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, timeout: 30)})"#,
        );
        assert!(e.message.contains("`timeout` takes text"), "{e:?}");
        assert!(e.hint.contains("timeout: \"30s\""), "{e:?}");
    }
}
