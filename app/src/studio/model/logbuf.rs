//! A bounded log: the newest lines of a task, each cut to a maximum length, with a count of
//! what was dropped, so a task printing megabytes cannot exhaust memory.

use std::collections::VecDeque;

use graflow_engine::LogStream;

/// Lines kept per task.
pub const MAX_LINES: usize = 5_000;
/// Characters kept per line.
pub const MAX_LINE_CHARS: usize = 1_000;

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Its 0-based number among every line the task printed (dropped ones included).
    pub seq: u64,
    /// Where it came from.
    pub stream: LogStream,
    /// The text (control characters replaced, cut to [`MAX_LINE_CHARS`]).
    pub text: String,
}

impl LogLine {
    /// Whether this line counts as an error: it came from stderr or mentions an error.
    pub fn is_error(&self) -> bool {
        if self.stream == LogStream::Stderr {
            return true;
        }
        let lower = self.text.to_ascii_lowercase();
        ["error", "fail", "panic", "exception", "fatal"]
            .iter()
            .any(|w| lower.contains(w))
    }
}

/// The newest lines of one task.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    cap: usize,
    next_seq: u64,
    dropped: u64,
    truncated: u64,
}

impl Default for LogBuffer {
    fn default() -> Self {
        LogBuffer::with_capacity(MAX_LINES)
    }
}

impl LogBuffer {
    /// A buffer keeping at most `cap` lines.
    pub fn with_capacity(cap: usize) -> Self {
        LogBuffer {
            lines: VecDeque::new(),
            cap: cap.max(1),
            next_seq: 0,
            dropped: 0,
            truncated: 0,
        }
    }

    /// Add a line; the oldest goes when full.
    pub fn push(&mut self, stream: LogStream, text: &str) {
        let mut clean: String = text
            .chars()
            .take(MAX_LINE_CHARS)
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '·',
                c => c,
            })
            .collect();
        if text.chars().nth(MAX_LINE_CHARS).is_some() {
            clean.push('…');
            self.truncated += 1;
        }
        if self.lines.len() == self.cap {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(LogLine {
            seq: self.next_seq,
            stream,
            text: clean,
        });
        self.next_seq += 1;
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> &VecDeque<LogLine> {
        &self.lines
    }

    /// Number of kept lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Lines that were cut to [`MAX_LINE_CHARS`].
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Every line the task printed, dropped ones included.
    pub fn total(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_and_counts_the_rest() {
        let mut b = LogBuffer::with_capacity(3);
        for i in 0..10 {
            b.push(LogStream::Stdout, &format!("line {i}"));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped(), 7);
        assert_eq!(b.total(), 10);
        assert_eq!(b.lines()[0].text, "line 7");
        assert_eq!(b.lines()[0].seq, 7);
    }

    #[test]
    fn cuts_long_lines_and_cleans_control_characters() {
        let mut b = LogBuffer::default();
        b.push(LogStream::Stderr, &"x".repeat(MAX_LINE_CHARS * 3));
        b.push(LogStream::Stdout, "a\tb\x1b[31mc");
        assert_eq!(b.lines()[0].text.chars().count(), MAX_LINE_CHARS + 1);
        assert_eq!(b.truncated(), 1);
        assert_eq!(b.lines()[1].text, "a b·[31mc");
        assert!(b.lines()[0].is_error());
        assert!(!b.lines()[1].is_error());
    }
}
