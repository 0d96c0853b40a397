//! Text for the terminal, shared by the studio and the command line: how wide a text draws
//! (CJK characters and most emoji take two cells, combining marks none), cutting and padding
//! to a width without splitting a character, the one way durations read, and plurals.
//!
//! Widths are counted per grapheme cluster (what a reader sees as one character) the way
//! ratatui draws them: a cluster's cells are its Unicode width, and a cluster with a control
//! character draws nothing.

use std::time::Duration;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// What a cut text ends with.
pub const ELLIPSIS: char = '…';

/// The grapheme clusters of `s` with the cells each takes.
pub fn cells(s: &str) -> impl Iterator<Item = (&str, usize)> {
    s.graphemes(true).map(|g| (g, cluster_width(g)))
}

fn cluster_width(g: &str) -> usize {
    if g.chars().any(char::is_control) {
        0
    } else {
        g.width()
    }
}

/// How many terminal cells `s` takes.
pub fn width(s: &str) -> usize {
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_control()) {
        return s.len();
    }
    cells(s).map(|(_, w)| w).sum()
}

/// The longest start of `s` that takes at most `max` cells, and the cells it takes.
fn prefix(s: &str, max: usize) -> (&str, usize) {
    let mut used = 0;
    let mut end = 0;
    for (g, w) in cells(s) {
        if used + w > max {
            break;
        }
        used += w;
        end += g.len();
    }
    (&s[..end], used)
}

/// `s` cut to at most `max` cells, ending with `…` when it was cut. Never splits a
/// character: a wide character that would straddle the edge goes too.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let (head, _) = prefix(s, max - 1);
    let mut out = String::with_capacity(head.len() + ELLIPSIS.len_utf8());
    out.push_str(head);
    out.push(ELLIPSIS);
    out
}

/// `s` cut to at most `max` cells without an ellipsis (for a text that continues elsewhere,
/// like a wrapped line).
pub fn cut(s: &str, max: usize) -> &str {
    prefix(s, max).0
}

/// `s` cut (with `…`) and padded with spaces on the right to exactly `w` cells: a left-aligned
/// column.
pub fn pad(s: &str, w: usize) -> String {
    let mut out = truncate(s, w);
    let used = width(&out);
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(used)));
    out
}

/// `s` cut (with `…`) and padded with spaces on the left to exactly `w` cells: a
/// right-aligned column.
pub fn pad_left(s: &str, w: usize) -> String {
    let cut = truncate(s, w);
    let used = width(&cut);
    let mut out = " ".repeat(w.saturating_sub(used));
    out.push_str(&cut);
    out
}

/// Cut a line that may carry ANSI colour sequences (`ESC [ … m`) to `max` visible cells,
/// ending with `…` and a style reset when cut. The sequences take no cells and are kept.
pub fn truncate_ansi(s: &str, max: usize) -> String {
    let mut visible = 0;
    let mut plain = true;
    for part in ansi_parts(s) {
        match part {
            AnsiPart::Escape(_) => plain = false,
            AnsiPart::Text(t) => visible += width(t),
        }
    }
    if visible <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut room = max.saturating_sub(1);
    for part in ansi_parts(s) {
        match part {
            AnsiPart::Escape(e) => out.push_str(e),
            AnsiPart::Text(t) => {
                let (head, used) = prefix(t, room);
                out.push_str(head);
                room -= used;
                if head.len() < t.len() {
                    break;
                }
            }
        }
    }
    if max > 0 {
        out.push(ELLIPSIS);
    }
    if !plain {
        out.push_str("\x1b[0m");
    }
    out
}

enum AnsiPart<'a> {
    Escape(&'a str),
    Text(&'a str),
}

/// Split a text into SGR escape sequences (`ESC` up to and including `m`) and plain runs.
fn ansi_parts(s: &str) -> impl Iterator<Item = AnsiPart<'_>> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.starts_with('\x1b') {
            let end = rest.find('m').map_or(rest.len(), |i| i + 1);
            let (e, r) = rest.split_at(end);
            rest = r;
            Some(AnsiPart::Escape(e))
        } else {
            let end = rest.find('\x1b').unwrap_or(rest.len());
            let (t, r) = rest.split_at(end);
            rest = r;
            Some(AnsiPart::Text(t))
        }
    })
}

/// A duration in milliseconds as `500µs`, `850ms`, `1.2s`, `3m04s` (`?` when not a time).
pub fn duration_ms(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "?".into();
    }
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0) as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A duration as [`duration_ms`] writes it.
pub fn duration(d: Duration) -> String {
    duration_ms(d.as_secs_f64() * 1000.0)
}

/// A duration rounded down to its largest unit, for ages and waits: `850ms`, `12s`, `4m`,
/// `2h`, `3d`.
pub fn duration_coarse(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `n` and `noun`, plural unless `n` is 1: `1 workflow`, `2 workflows`, `0 matches`,
/// `3 entries`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {}", plural_of(noun))
    }
}

/// The English plural of a noun (regular forms: `task`s, `match`es, `entry` → `entries`).
pub fn plural_of(noun: &str) -> String {
    let ends = |suffix: &str| noun.ends_with(suffix);
    if ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh") {
        format!("{noun}es")
    } else if let Some(stem) = noun.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        && !stem.is_empty()
    {
        format!("{stem}ies")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn widths_count_cells() {
        assert_eq!(width("fetch"), 5);
        assert_eq!(width("データ取得"), 10);
        assert_eq!(width("🚀 go"), 5);
        // e + combining acute: one character, one cell.
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(width("a\tb"), 2);
        assert_eq!(width(""), 0);
    }

    #[test]
    fn truncates_with_an_ellipsis_and_never_halves_a_wide_character() {
        assert_eq!(truncate("fetch", 5), "fetch");
        assert_eq!(truncate("fetch", 4), "fet…");
        assert_eq!(truncate("fetch", 1), "…");
        assert_eq!(truncate("fetch", 0), "");
        assert_eq!(truncate("データ取得", 10), "データ取得");
        assert_eq!(truncate("データ取得", 9), "データ取…");
        assert_eq!(truncate("データ取得", 6), "デー…");
        assert_eq!(truncate("データ取得", 2), "…");
        assert_eq!(truncate("cafe\u{301}s", 5), "cafe\u{301}s");
        assert_eq!(truncate("cafe\u{301}s!", 5), "cafe\u{301}…");
        assert_eq!(cut("データ", 3), "デ");
    }

    #[test]
    fn pads_to_exact_widths() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("データ", 7), "データ ");
        assert_eq!(pad("データ", 5), "デー…");
        assert_eq!(pad("データ取得", 4), "デ… ");
        assert_eq!(pad_left("12", 4), "  12");
        assert_eq!(pad_left("変換", 5), " 変換");
    }

    #[test]
    fn cuts_coloured_lines_by_what_shows() {
        let red = "\x1b[31mデータ取得 failed\x1b[0m";
        assert_eq!(truncate_ansi(red, 40), red);
        assert_eq!(truncate_ansi(red, 6), "\x1b[31mデー…\x1b[0m");
        assert_eq!(truncate_ansi("plain text", 6), "plain…");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(duration_ms(0.5), "500µs");
        assert_eq!(duration_ms(850.0), "850ms");
        assert_eq!(duration_ms(1234.0), "1.2s");
        assert_eq!(duration_ms(184_000.0), "3m04s");
        assert_eq!(duration_ms(f64::NAN), "?");
        assert_eq!(duration_ms(-1.0), "?");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        let coarse = |ms| duration_coarse(Duration::from_millis(ms));
        assert_eq!(coarse(850), "850ms");
        assert_eq!(coarse(12_400), "12s");
        assert_eq!(coarse(250_000), "4m");
        assert_eq!(coarse(7_300_000), "2h");
        assert_eq!(coarse(3 * 86_400_000 + 5), "3d");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "workflow"), "1 workflow");
        assert_eq!(plural(2, "workflow"), "2 workflows");
        assert_eq!(plural(0, "line"), "0 lines");
        assert_eq!(plural(3, "match"), "3 matches");
        assert_eq!(plural(2, "entry"), "2 entries");
        assert_eq!(plural(2, "day"), "2 days");
        assert_eq!(plural(5, "process"), "5 processes");
        assert_eq!(plural(1, "member"), "1 member");
    }

    /// Any text: ASCII, CJK, emoji (with modifiers and joiners), combining marks, controls.
    fn any_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z _.-]{0,6}",
            "[データ取得変換保存日本語]{0,4}",
            Just("👍🏽".to_string()),
            Just("👨‍👩‍👧".to_string()),
            Just("🚀".to_string()),
            Just("e\u{301}\u{308}".to_string()),
            Just("\u{301}".to_string()),
            Just("\t\n".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    fn is_cluster_boundary(s: &str, at: usize) -> bool {
        at == s.len() || s.grapheme_indices(true).any(|(i, _)| i == at)
    }

    proptest! {
        #[test]
        fn truncate_fits_and_keeps_whole_characters(s in any_text(), max in 0usize..16) {
            let t = truncate(&s, max);
            prop_assert!(width(&t) <= max, "{t:?} is wider than {max}");
            let head = t.strip_suffix(ELLIPSIS).filter(|_| t != s).unwrap_or(&t);
            prop_assert!(s.starts_with(head));
            prop_assert!(is_cluster_boundary(&s, head.len()), "{s:?} split at {}", head.len());
            if width(&s) <= max {
                prop_assert_eq!(&t, &s);
            }
        }

        #[test]
        fn pad_is_exactly_the_width(s in any_text(), w in 0usize..16) {
            prop_assert_eq!(width(&pad(&s, w)), w);
            prop_assert_eq!(width(&pad_left(&s, w)), w);
        }

        #[test]
        fn cut_fits_and_keeps_whole_characters(s in any_text(), max in 0usize..16) {
            let c = cut(&s, max);
            prop_assert!(width(c) <= max);
            prop_assert!(is_cluster_boundary(&s, c.len()));
        }

        #[test]
        fn truncate_ansi_counts_only_what_shows(s in any_text(), max in 0usize..16) {
            let coloured = format!("\x1b[1m{s}\x1b[0m");
            let t = truncate_ansi(&coloured, max);
            let shown: String = ansi_parts(&t)
                .filter_map(|p| match p { AnsiPart::Text(t) => Some(t), AnsiPart::Escape(_) => None })
                .collect();
            prop_assert!(width(&shown) <= max);
        }
    }
}
