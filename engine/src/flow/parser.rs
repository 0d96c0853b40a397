//! The string form of the flow language (DESIGN §4):
//!
//! ```text
//! flow := stmt ((';' | newline) stmt)*     stmt := par
//! par  := seq ('|' seq)*                    seq  := atom ('>>' atom)*
//! atom := NAME | '(' par ')'
//! ```
//! Newlines inside parentheses, or before/after an operator, continue the statement; `#` starts
//! a comment that runs to the end of the line. Names are letters, digits, `_`, `-`, `.` and `:`.

use crate::error::{BuildError, Span};
use crate::limits::MAX_FLOW_DEPTH;

use super::{Flow, Leaf};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Seq,
    Par,
    Open,
    Close,
    Semi,
    Newline,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("name '{n}'"),
            Tok::Seq => "'>>'".into(),
            Tok::Par => "'|'".into(),
            Tok::Open => "'('".into(),
            Tok::Close => "')'".into(),
            Tok::Semi => "';'".into(),
            Tok::Newline => "end of line".into(),
            Tok::End => "end of flow".into(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    fn span(&self, start: (usize, usize, usize)) -> Span {
        Span {
            offset: start.0,
            len: self.pos - start.0,
            line: start.1,
            column: start.2,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.src[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn tokens(mut self) -> Result<Vec<(Tok, Span)>, BuildError> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Some(c) if c.is_whitespace() && c != '\n') {
                self.bump();
            }
            if self.peek() == Some('#') {
                while matches!(self.peek(), Some(c) if c != '\n') {
                    self.bump();
                }
            }
            let start = (self.pos, self.line, self.column);
            let Some(c) = self.bump() else {
                out.push((Tok::End, self.span(start)));
                return Ok(out);
            };
            let tok = match c {
                '\n' => Tok::Newline,
                ';' => Tok::Semi,
                '(' => Tok::Open,
                ')' => Tok::Close,
                '|' => Tok::Par,
                '>' if self.peek() == Some('>') => {
                    self.bump();
                    Tok::Seq
                }
                c if is_name_char(c) => {
                    while matches!(self.peek(), Some(c) if is_name_char(c)) {
                        self.bump();
                    }
                    Tok::Name(self.src[start.0..self.pos].to_string())
                }
                other => {
                    let hint = match other {
                        '>' => "; did you mean '>>'?",
                        '&' | ',' => "; use '|' for parallel tasks",
                        _ => "",
                    };
                    return Err(BuildError::FlowSyntax {
                        message: format!("unexpected character '{other}'{hint}"),
                        span: self.span(start),
                    });
                }
            };
            out.push((tok, self.span(start)));
        }
    }
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    /// The next token, looking past newlines when they cannot end the statement.
    fn peek_continuing(&mut self) -> &Tok {
        let mut i = self.pos;
        while self.toks[i].0 == Tok::Newline {
            i += 1;
        }
        if self.depth > 0 || matches!(self.toks[i].0, Tok::Seq | Tok::Par) {
            self.pos = i;
        }
        &self.toks[self.pos].0
    }

    fn skip_newlines(&mut self) {
        while *self.peek() == Tok::Newline {
            self.pos += 1;
        }
    }

    fn error(&self, expected: &str) -> BuildError {
        let (tok, span) = &self.toks[self.pos];
        BuildError::FlowSyntax {
            message: format!("expected {expected}, found {}", tok.describe()),
            span: *span,
        }
    }

    fn par(&mut self) -> Result<Flow, BuildError> {
        let mut flow = self.seq()?;
        while *self.peek_continuing() == Tok::Par {
            self.pos += 1;
            self.skip_newlines();
            flow = flow.par(self.seq()?);
        }
        Ok(flow)
    }

    fn seq(&mut self) -> Result<Flow, BuildError> {
        let mut flow = self.atom()?;
        while *self.peek_continuing() == Tok::Seq {
            self.pos += 1;
            self.skip_newlines();
            flow = flow.then(self.atom()?);
        }
        Ok(flow)
    }

    fn atom(&mut self) -> Result<Flow, BuildError> {
        if self.depth > 0 {
            self.skip_newlines();
        }
        let (tok, span) = self.toks[self.pos].clone();
        match tok {
            Tok::Name(name) => {
                self.pos += 1;
                Ok(Flow::Leaf(Leaf::Name {
                    name,
                    span: Some(span),
                }))
            }
            Tok::Open => {
                if self.depth >= MAX_FLOW_DEPTH {
                    return Err(BuildError::FlowSyntax {
                        message: format!("parentheses nested deeper than {MAX_FLOW_DEPTH} levels"),
                        span,
                    });
                }
                self.pos += 1;
                self.depth += 1;
                let inner = self.par()?;
                self.skip_newlines();
                if *self.peek() != Tok::Close {
                    return Err(self.error("'|', '>>' or ')'"));
                }
                self.depth -= 1;
                self.pos += 1;
                Ok(inner)
            }
            _ => Err(self.error("a task name or '('")),
        }
    }
}

/// Parse a flow string into its statements. Errors carry the line and column.
pub fn parse_flow(src: &str) -> Result<Vec<Flow>, BuildError> {
    let toks = Lexer {
        src,
        pos: 0,
        line: 1,
        column: 1,
    }
    .tokens()?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let mut statements = Vec::new();
    loop {
        while matches!(p.peek(), Tok::Newline | Tok::Semi) {
            p.pos += 1;
        }
        if *p.peek() == Tok::End {
            return Ok(statements);
        }
        statements.push(p.par()?);
        match p.peek() {
            Tok::Newline | Tok::Semi | Tok::End => {}
            Tok::Close => return Err(p.error("a task name, '>>', '|' or ';' (unbalanced ')')")),
            _ => return Err(p.error("'>>', '|', ';' or a new line")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ParFlow;

    fn shape(f: &Flow) -> String {
        match f {
            Flow::Leaf(Leaf::Name { name, .. }) => name.clone(),
            Flow::Leaf(_) => unreachable!(),
            Flow::Seq(items) => {
                let v: Vec<String> = items.iter().map(shape).collect();
                format!("[{}]", v.join(" >> "))
            }
            Flow::Par(ParFlow { items, .. }) => {
                let v: Vec<String> = items.iter().map(shape).collect();
                format!("({})", v.join(" | "))
            }
        }
    }

    fn parse(src: &str) -> Vec<String> {
        parse_flow(src).unwrap().iter().map(shape).collect()
    }

    fn syntax_error(src: &str) -> (String, usize, usize) {
        match parse_flow(src).unwrap_err() {
            BuildError::FlowSyntax { message, span } => (message, span.line, span.column),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn precedence_and_grouping() {
        assert_eq!(parse("a >> b | c >> d"), ["([a >> b] | [c >> d])"]);
        assert_eq!(parse("a >> (b | c) >> d"), ["[a >> (b | c) >> d]"]);
        assert_eq!(parse("(a | b) | (c | d)"), ["(a | b | c | d)"]);
        assert_eq!(parse("a"), ["a"]);
    }

    #[test]
    fn statements_split_on_semicolons_and_newlines() {
        assert_eq!(
            parse("a >> b >> d; a >> c >> d"),
            ["[a >> b >> d]", "[a >> c >> d]"]
        );
        assert_eq!(parse("a >> b\n\nc >> d\n"), ["[a >> b]", "[c >> d]"]);
    }

    #[test]
    fn operators_and_parentheses_continue_lines() {
        assert_eq!(
            parse("fetch\n  >> clean\n  >> load"),
            ["[fetch >> clean >> load]"]
        );
        assert_eq!(parse("fetch >>\n  load"), ["[fetch >> load]"]);
        assert_eq!(parse("(a\n | b\n)\n>> c"), ["[(a | b) >> c]"]);
        assert_eq!(parse("a >> b # first\n# whole line\nc"), ["[a >> b]", "c"]);
    }

    #[test]
    fn names_may_hold_dashes_dots_and_colons() {
        assert_eq!(
            parse("load-db >> v1.2 >> ns:task"),
            ["[load-db >> v1.2 >> ns:task]"]
        );
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(
            syntax_error("a >> >> b"),
            ("expected a task name or '(', found '>>'".into(), 1, 6)
        );
        assert_eq!(
            syntax_error("a >> (b | c\n"),
            ("expected '|', '>>' or ')', found end of flow".into(), 2, 1)
        );
        let (msg, line, col) = syntax_error("a\nb > c");
        assert!(msg.contains("did you mean '>>'"), "{msg}");
        assert_eq!((line, col), (2, 3));
        let (msg, _, col) = syntax_error("a b");
        assert_eq!(
            (msg.as_str(), col),
            ("expected '>>', '|', ';' or a new line, found name 'b'", 3)
        );
        assert!(syntax_error("a)").0.contains("unbalanced"));
        assert!(syntax_error("a >>").0.contains("end of flow"));
        assert!(syntax_error("|").0.contains("task name"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let ok = format!(
            "{}a{}",
            "(".repeat(MAX_FLOW_DEPTH),
            ")".repeat(MAX_FLOW_DEPTH)
        );
        assert_eq!(parse(&ok), ["a"]);
        for depth in [MAX_FLOW_DEPTH + 1, 50_000] {
            let deep = format!("{}a{}", "(".repeat(depth), ")".repeat(depth));
            let (msg, line, col) = syntax_error(&deep);
            assert!(msg.contains("nested deeper than 128"), "{msg}");
            assert_eq!((line, col), (1, MAX_FLOW_DEPTH + 1));
        }
        // Unclosed, and mixed with operators.
        let open = format!("x >> {}", "(a | ".repeat(100_000));
        assert!(syntax_error(&open).0.contains("nested deeper"));
    }

    #[test]
    fn empty_input_has_no_statements() {
        assert!(parse_flow("").unwrap().is_empty());
        assert!(parse_flow(" ;\n; # nothing").unwrap().is_empty());
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet = ['a', 'b', '>', '|', '(', ')', ';', '\n', ' ', '#', 'é', '&'];
        let mut state = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let len = (state % 16) as usize;
            let s: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    alphabet[(state % alphabet.len() as u32) as usize]
                })
                .collect();
            let _ = parse_flow(&s);
        }
    }
}
