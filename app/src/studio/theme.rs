//! Colour themes: semantic colour slots read from `themes/*.ron` (`Theme(base: "dark",
//! failed: "#ff5555", …)`, every slot optional, missing ones taken from the base), the three
//! built-in themes, and the colourless theme `NO_COLOR` asks for.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use super::model::TaskStatus;

const DARK: &str = include_str!("../../../themes/dark.ron");
const LIGHT: &str = include_str!("../../../themes/light.ron");
const HIGH_CONTRAST: &str = include_str!("../../../themes/high-contrast.ron");

/// The built-in themes: (name, RON text).
pub const BUILT_IN: [(&str, &str); 3] = [
    ("dark", DARK),
    ("light", LIGHT),
    ("high-contrast", HIGH_CONTRAST),
];

macro_rules! slots {
    ($($slot:ident : $doc:literal),* $(,)?) => {
        /// A theme file: every slot optional.
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(rename = "Theme", deny_unknown_fields)]
        pub struct ThemeFile {
            /// The theme this one starts from (`dark`, `light`, `high-contrast`); `dark` if unset.
            #[serde(default)]
            pub base: Option<String>,
            $(#[doc = $doc] #[serde(default)] pub $slot: Option<String>,)*
        }

        /// A resolved theme: one colour per slot.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            /// The theme's name (file stem or built-in name).
            pub name: String,
            /// No colours at all (`NO_COLOR`): styles use bold, dim and reverse only.
            pub monochrome: bool,
            $(#[doc = $doc] pub $slot: Color,)*
        }

        impl Theme {
            fn overlay(&mut self, file: &ThemeFile) -> Result<(), String> {
                $(
                    if let Some(text) = &file.$slot {
                        self.$slot = Color::from_str(text).map_err(|_| {
                            format!("{}: '{}' is not a colour (use a name, \"#rrggbb\" or 0–255)", stringify!($slot), text)
                        })?;
                    }
                )*
                Ok(())
            }

            fn all(color: Color) -> Theme {
                Theme { name: String::new(), monochrome: false, $($slot: color,)* }
            }
        }
    };
}

slots!(
    fg: "Normal text.",
    bg: "Background (`reset` keeps the terminal's own).",
    muted: "Secondary text: timings, hints, pending tasks.",
    border: "Pane borders.",
    border_focus: "The focused pane's border.",
    title: "Pane titles.",
    selection_fg: "Selected row text.",
    selection_bg: "Selected row background.",
    accent: "Highlights: the active tab, search matches.",
    key: "Key names in the hint bar and help.",
    pending: "A task that has not started.",
    running: "A running task.",
    succeeded: "A task that succeeded.",
    failed: "A task that failed.",
    retrying: "A task waiting for its next attempt.",
    cancelled: "A cancelled run or task.",
    edge: "Graph edges.",
    loop_edge: "Loop edges (drawn dashed).",
    group: "Parallel groups.",
    error: "Error messages.",
    warning: "Warnings.",
);

impl Theme {
    /// A built-in theme by name.
    pub fn built_in(name: &str) -> Option<Theme> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Theme::parse(name, text).ok()
    }

    /// The built-in theme after this one (dark → light → high-contrast → dark; a theme from
    /// a file is followed by dark).
    pub fn next_built_in(&self) -> Theme {
        let i = BUILT_IN
            .iter()
            .position(|(n, _)| *n == self.name)
            .map_or(0, |i| (i + 1) % BUILT_IN.len());
        Theme::built_in(BUILT_IN[i].0).unwrap_or_else(Theme::dark)
    }

    /// The default dark theme.
    pub fn dark() -> Theme {
        Theme::built_in("dark").unwrap_or_else(|| Theme::all(Color::Reset))
    }

    /// Parse a theme file's text; `name` names it.
    pub fn parse(name: &str, text: &str) -> Result<Theme, String> {
        let file: ThemeFile = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| format!("{}:{}: {}", e.span.start.line, e.span.start.col, e.code))?;
        let mut theme = match file.base.as_deref() {
            None | Some("none") => Theme::all(Color::Reset),
            Some(base) if base == name => {
                return Err(format!("theme '{name}' names itself as its base"));
            }
            Some(base) => {
                Theme::built_in(base).ok_or_else(|| format!("unknown base theme '{base}'"))?
            }
        };
        theme.overlay(&file)?;
        theme.name = name.to_string();
        Ok(theme)
    }

    /// Find a theme by name or path: a built-in name, a file in `<config>/themes/NAME.ron`,
    /// or a path to a `.ron` file.
    pub fn load(spec: &str, config_dir: Option<&Path>) -> Result<Theme, String> {
        if let Some(t) = Theme::built_in(spec) {
            return Ok(t);
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = config_dir {
            candidates.push(dir.join("themes").join(format!("{spec}.ron")));
        }
        candidates.push(PathBuf::from(spec));
        for path in candidates {
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                return Theme::parse(&name, &text).map_err(|e| format!("{}:{e}", path.display()));
            }
        }
        let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        Err(format!(
            "no theme '{spec}' (built in: {}; or a path to a .ron file)",
            names.join(", ")
        ))
    }

    /// The theme for terminals without colour (`NO_COLOR`).
    pub fn monochrome() -> Theme {
        let mut t = Theme::all(Color::Reset);
        t.name = "no-color".into();
        t.monochrome = true;
        t
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::new().fg(self.fg).bg(self.bg)
    }

    /// Secondary text.
    pub fn muted(&self) -> Style {
        if self.monochrome {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            Style::new().fg(self.muted)
        }
    }

    /// A pane border.
    pub fn border(&self, focused: bool) -> Style {
        match (self.monochrome, focused) {
            (true, true) => Style::new().add_modifier(Modifier::BOLD),
            (true, false) => Style::new().add_modifier(Modifier::DIM),
            (false, true) => Style::new().fg(self.border_focus),
            (false, false) => Style::new().fg(self.border),
        }
    }

    /// A pane title.
    pub fn title(&self, focused: bool) -> Style {
        let s = Style::new().fg(self.title);
        if focused {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    /// The selected row.
    pub fn selection(&self) -> Style {
        if self.monochrome {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().fg(self.selection_fg).bg(self.selection_bg)
        }
    }

    /// A highlight.
    pub fn accent(&self) -> Style {
        Style::new().fg(self.accent).add_modifier(Modifier::BOLD)
    }

    /// A key name.
    pub fn key(&self) -> Style {
        Style::new().fg(self.key).add_modifier(Modifier::BOLD)
    }

    /// An error message.
    pub fn error(&self) -> Style {
        Style::new().fg(self.error).add_modifier(Modifier::BOLD)
    }

    /// A warning.
    pub fn warning(&self) -> Style {
        Style::new().fg(self.warning)
    }

    /// A task status.
    pub fn status(&self, status: TaskStatus) -> Style {
        if self.monochrome {
            return match status {
                TaskStatus::Failed => {
                    Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
                }
                TaskStatus::Running => Style::new().add_modifier(Modifier::BOLD),
                TaskStatus::Pending | TaskStatus::Skipped => {
                    Style::new().add_modifier(Modifier::DIM)
                }
                TaskStatus::Waiting => Style::new().add_modifier(Modifier::ITALIC),
                _ => Style::new(),
            };
        }
        let c = match status {
            TaskStatus::Pending | TaskStatus::Skipped => self.pending,
            TaskStatus::Running => self.running,
            TaskStatus::Succeeded => self.succeeded,
            TaskStatus::Failed => self.failed,
            TaskStatus::Retrying => self.retrying,
            TaskStatus::Waiting => self.warning,
            TaskStatus::Cancelled => self.cancelled,
        };
        Style::new().fg(c)
    }

    /// A graph edge.
    pub fn edge(&self, is_loop: bool) -> Style {
        match (self.monochrome, is_loop) {
            (true, true) => Style::new().add_modifier(Modifier::DIM),
            (true, false) => Style::new(),
            (false, true) => Style::new().fg(self.loop_edge),
            (false, false) => Style::new().fg(self.edge),
        }
    }

    /// A group label.
    pub fn group(&self) -> Style {
        Style::new().fg(self.group).add_modifier(Modifier::BOLD)
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::dark()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_parse_completely() {
        for (name, text) in BUILT_IN {
            let t = Theme::parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.name, name);
            assert_ne!(
                t.failed, t.succeeded,
                "{name}: failed and succeeded look alike"
            );
        }
    }

    #[test]
    fn overrides_and_errors() {
        let t = Theme::parse("mine", r##"Theme(base: "light", failed: "#010203")"##)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.failed, Color::Rgb(1, 2, 3));
        assert_eq!(
            t.succeeded,
            Theme::built_in("light")
                .map(|l| l.succeeded)
                .unwrap_or(Color::Reset)
        );
        let e = Theme::parse("bad", r#"Theme(failed: "not-a-colour")"#)
            .err()
            .unwrap_or_default();
        assert!(e.contains("failed"), "{e}");
        let e = Theme::parse("bad", "Theme(nope: \"red\")")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("1:"), "{e}");
        assert!(Theme::load("no-such-theme", None).is_err());
    }
}
