//! Terminal colours for the headless commands, off when the stream is not a terminal or
//! `NO_COLOR` is set.

use std::io::IsTerminal;

use graflow_engine::file::{Diagnostic, Severity};

/// Whether and how to colour output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colours for standard output.
    pub fn stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && no_color_unset(),
        }
    }

    /// Colours for standard error.
    pub fn stderr() -> Style {
        Style {
            color: std::io::stderr().is_terminal() && no_color_unset(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Green.
    pub fn ok(&self, t: &str) -> String {
        self.paint("32", t)
    }
    /// Red.
    pub fn error(&self, t: &str) -> String {
        self.paint("31", t)
    }
    /// Yellow.
    pub fn warning(&self, t: &str) -> String {
        self.paint("33", t)
    }
    /// Dim.
    pub fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    /// Bold.
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    /// Cyan.
    pub fn info(&self, t: &str) -> String {
        self.paint("36", t)
    }

    /// A diagnostic, coloured by severity.
    pub fn diagnostic(&self, d: &Diagnostic) -> String {
        match d.severity {
            Severity::Error => self.error(&d.to_string()),
            Severity::Warning => self.warning(&d.to_string()),
        }
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
