//! Finding places in a workflow file's text, so errors found after parsing (a bad duration, an
//! unknown name inside a flow string) can still point at a line and column.
//!
//! This is a light scan of the RON text that understands strings, raw strings and comments —
//! enough to find `tasks: { "name": Task(field: …` — not a second parser.

/// A line and column, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
}

/// Text positions of a workflow file.
pub struct Locator<'a> {
    src: &'a str,
}

/// A string literal found in the text: where its content starts and how it is written.
struct Literal {
    content_start: usize,
    raw: bool,
}

impl<'a> Locator<'a> {
    /// A locator over `src`.
    pub fn new(src: &'a str) -> Self {
        Locator { src }
    }

    /// Line and column of a byte offset.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.src.len());
        let before = &self.src[..self.floor(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        Pos {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }

    fn floor(&self, mut i: usize) -> usize {
        while i > 0 && !self.src.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    /// Offsets of code (outside strings and comments) where `pred` matches, from `from` on.
    fn scan(&self, from: usize, mut pred: impl FnMut(usize) -> bool) -> Option<usize> {
        let b = self.src.as_bytes();
        let mut i = from;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    if pred(i) {
                        return Some(i);
                    }
                    i = self.skip_string(i, 0);
                }
                b'r' if (i == 0 || !is_ident(b[i - 1])) && raw_hashes(&b[i + 1..]).is_some() => {
                    let hashes = raw_hashes(&b[i + 1..]).unwrap_or(0);
                    i = self.skip_string(i + 1 + hashes, hashes);
                }
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                        i += 1;
                    }
                    i += 2;
                }
                _ => {
                    if pred(i) {
                        return Some(i);
                    }
                    i += 1;
                }
            }
        }
        None
    }

    /// Index just past a string literal whose opening quote is at `quote`.
    fn skip_string(&self, quote: usize, hashes: usize) -> usize {
        let b = self.src.as_bytes();
        let mut i = quote + 1;
        while i < b.len() {
            if hashes == 0 && b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'"'
                && b[i + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|c| **c == b'#')
                    .count()
                    == hashes
            {
                return i + 1 + hashes;
            }
            i += 1;
        }
        b.len()
    }

    /// The offset of field `name:` (an identifier followed by a colon) at or after `from`.
    pub fn field(&self, from: usize, name: &str) -> Option<usize> {
        let b = self.src.as_bytes();
        let name = name.as_bytes();
        self.scan(from, |i| {
            b[i..].starts_with(name)
                && (i == 0 || !is_ident(b[i - 1]))
                && followed_by_colon(&b[i + name.len()..])
                && !is_ident(*b.get(i + name.len()).unwrap_or(&b' '))
        })
    }

    /// The offset of map key `"name"` (a string followed by a colon) at or after `from`.
    pub fn key(&self, from: usize, name: &str) -> Option<usize> {
        let quoted = format!("\"{name}\"");
        let quoted = quoted.as_bytes();
        let b = self.src.as_bytes();
        self.scan(from, |i| {
            b[i..].starts_with(quoted) && followed_by_colon(&b[i + quoted.len()..])
        })
    }

    /// The top-level field `name:` of the workflow.
    pub fn top_field(&self, name: &str) -> Option<usize> {
        self.field(0, name)
    }

    /// The entry `"task": …` inside `section:` (`tasks` or `groups`).
    pub fn entry(&self, section: &str, name: &str) -> Option<usize> {
        let start = self.top_field(section)?;
        self.key(start, name)
    }

    /// A field of an entry, e.g. `timeout:` of task `fetch`; falls back to the entry itself.
    pub fn entry_field(&self, section: &str, name: &str, field: &str) -> Option<usize> {
        let entry = self.entry(section, name)?;
        let end = self.next_key_after(entry).unwrap_or(self.src.len());
        match self.field(entry, field) {
            Some(at) if at < end => Some(at),
            _ => Some(entry),
        }
    }

    fn next_key_after(&self, entry: usize) -> Option<usize> {
        // The entry's value ends where the bracket depth returns to the map's level.
        let b = self.src.as_bytes();
        let mut depth = 0i32;
        let colon = self.scan(entry + 1, |i| b[i] == b':')?;
        self.scan(colon + 1, |i| {
            match b[i] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    return depth < 0;
                }
                b',' if depth == 0 => return true,
                _ => {}
            }
            false
        })
    }

    /// The string literal that is the value of the field or key at `key_at` (after its `:`),
    /// or with `opener = b'('` the first argument of a variant such as `Script(…)`.
    fn literal_after(&self, key_at: usize, opener: u8) -> Option<Literal> {
        let b = self.src.as_bytes();
        let colon = self.scan(key_at + 1, |i| b[i] == opener)?;
        let mut i = colon + 1;
        while i < b.len() && (b[i] as char).is_whitespace() {
            i += 1;
        }
        match b.get(i)? {
            b'"' => Some(Literal {
                content_start: i + 1,
                raw: false,
            }),
            b'r' => {
                let hashes = raw_hashes(&b[i + 1..])?;
                Some(Literal {
                    content_start: i + 1 + hashes + 1,
                    raw: true,
                })
            }
            _ => None,
        }
    }

    /// Map a byte offset inside the decoded value of the string at `key_at` to a file offset.
    pub fn inside_string(&self, key_at: usize, decoded_offset: usize) -> Option<usize> {
        self.inside_literal(self.literal_after(key_at, b':')?, decoded_offset)
    }

    /// Like [`inside_string`](Self::inside_string) for the string argument of the variant
    /// whose name is at `variant_at`, e.g. the code of `Script(r#"…"#)`.
    #[cfg(feature = "script")]
    pub fn inside_string_after_paren(
        &self,
        variant_at: usize,
        decoded_offset: usize,
    ) -> Option<usize> {
        self.inside_literal(self.literal_after(variant_at, b'(')?, decoded_offset)
    }

    fn inside_literal(&self, lit: Literal, decoded_offset: usize) -> Option<usize> {
        if lit.raw {
            return Some(lit.content_start + decoded_offset);
        }
        let b = self.src.as_bytes();
        let (mut src, mut dec) = (lit.content_start, 0usize);
        while dec < decoded_offset && src < b.len() && b[src] != b'"' {
            if b[src] == b'\\' {
                let (consumed, produced) = escape_len(self.src.get(src..)?);
                src += consumed;
                dec += produced;
            } else {
                let ch = self.src.get(src..)?.chars().next()?;
                src += ch.len_utf8();
                dec += ch.len_utf8();
            }
            // An escape of unexpected shape may end inside a character: move to its start.
            src = self.floor(src.min(b.len()));
        }
        Some(src)
    }
}

/// Whether `rest` starts with a colon after whitespace (any Unicode whitespace).
fn followed_by_colon(rest: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&rest[..rest.len().min(256)]);
    text.trim_start().starts_with(':')
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `#…#"` after an `r`: the number of hashes.
fn raw_hashes(rest: &[u8]) -> Option<usize> {
    let n = rest.iter().take_while(|c| **c == b'#').count();
    (rest.get(n) == Some(&b'"')).then_some(n)
}

/// Bytes an escape takes in the source and in the decoded string.
fn escape_len(s: &str) -> (usize, usize) {
    let b = s.as_bytes();
    match b.get(1) {
        Some(b'u') => {
            let end = s.find('}').map(|i| i + 1).unwrap_or(2);
            let code = u32::from_str_radix(s.get(3..end.saturating_sub(1)).unwrap_or(""), 16).ok();
            let width = code
                .and_then(char::from_u32)
                .map(char::len_utf8)
                .unwrap_or(1);
            (end, width)
        }
        Some(b'x') => (4, 1),
        Some(b'\n') => {
            let skipped = s[2..].len() - s[2..].trim_start().len();
            (2 + skipped, 0)
        }
        _ => (2, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r##"// a comment with "tasks:" in it
Workflow(
    name: "x",
    flow: "a >> b",
    tasks: {
        "a": Task(run: Shell("echo \"timeout: 1\""), timeout: "3x"),
        "b": Task(run: Script(r#"let t = "b"; t"#), retries: (max: 2)),
    },
)"##;

    #[test]
    fn finds_fields_and_entries_outside_strings_and_comments() {
        let l = Locator::new(SRC);
        let tasks = l.top_field("tasks").unwrap();
        assert_eq!(l.pos(tasks), Pos { line: 5, column: 5 });
        let a_timeout = l.entry_field("tasks", "a", "timeout").unwrap();
        assert_eq!(
            l.pos(a_timeout),
            Pos {
                line: 6,
                column: 54
            }
        );
        let b = l.entry("tasks", "b").unwrap();
        assert_eq!(l.pos(b), Pos { line: 7, column: 9 });
        assert_eq!(
            l.entry_field("tasks", "b", "timeout"),
            Some(b),
            "falls back to the entry"
        );
    }

    #[test]
    fn maps_offsets_inside_strings() {
        let l = Locator::new(SRC);
        let flow = l.top_field("flow").unwrap();
        let at = l.inside_string(flow, 5).unwrap();
        assert_eq!(&SRC[at..at + 1], "b");
        let escaped = Locator::new(r#"flow: "a\"b c""#);
        let f = escaped.top_field("flow").unwrap();
        let at = escaped.inside_string(f, 4).unwrap();
        assert_eq!(escaped.pos(at).column, 13);
    }
}
