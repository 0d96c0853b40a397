//! A script line with a caret under the column an error points at, for diagnostics: a Rhai
//! syntax error then shows the code it is about, not only a position in the workflow file.

/// Where a script error really is: a position on a blank line or past the end (Rhai reports
/// an unclosed call where the text ends) moves to the end of the last line with code.
pub fn settle(code: &str, line: usize, column: usize) -> (usize, usize) {
    let lines: Vec<&str> = code.lines().collect();
    let blank = |l: usize| {
        lines
            .get(l.wrapping_sub(1))
            .is_none_or(|t| t.trim().is_empty())
    };
    if !blank(line) {
        return (line, column);
    }
    match (1..line.min(lines.len() + 1)).rev().find(|&l| !blank(l)) {
        Some(l) => (l, lines[l - 1].trim_end().chars().count() + 1),
        None => (line, column),
    }
}

/// `script line N:` then the line (indentation removed) and a caret under `column`.
pub fn caret(code: &str, line: usize, column: usize) -> Option<String> {
    let text = code.lines().nth(line.checked_sub(1)?)?;
    let indent = text.chars().take_while(|c| c.is_whitespace()).count();
    let shown: String = text.chars().skip(indent).collect();
    let pad = column.saturating_sub(1).saturating_sub(indent);
    Some(format!(
        "script line {line}:\n      {}\n      {}^",
        shown.trim_end(),
        " ".repeat(pad)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_at_the_end_moves_to_the_last_code() {
        let code = "\n    let rows = [1, 2];\n    rows.len(\n";
        assert_eq!(settle(code, 4, 1), (3, 14));
        assert_eq!(
            caret(code, 3, 14).as_deref(),
            Some("script line 3:\n      rows.len(\n               ^")
        );
        assert_eq!(settle(code, 2, 5), (2, 5));
        assert_eq!(caret(code, 9, 1), None);
    }
}
