//! The user's studio config: `config.ron` in the user's config folder
//! (`$XDG_CONFIG_HOME/graflow/` on Linux), or the file `--config` / `GRAFLOW_STUDIO_CONFIG`
//! names. Every field is optional; the command line wins over the file.
//!
//! ```ron
//! (
//!     theme: "light",
//!     mouse: false,
//!     log_follow: true,
//!     log_wrap: false,
//!     keys: { "run": ["ctrl-r"], "quit": ["q"] },
//! )
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The config file's content.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Theme name or path.
    #[serde(default)]
    pub theme: Option<String>,
    /// Mouse support (on by default).
    #[serde(default)]
    pub mouse: Option<bool>,
    /// Logs follow their end when opened (on by default).
    #[serde(default)]
    pub log_follow: Option<bool>,
    /// Logs wrap long lines (off by default).
    #[serde(default)]
    pub log_wrap: Option<bool>,
    /// Key overrides: action name → keys (replacing that action's default keys).
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
}

/// The user's config folder for Graflow, if the platform has one.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("graflow"));
    }
    directories::ProjectDirs::from("", "", "graflow").map(|d| d.config_dir().to_path_buf())
}

/// Where the config file is: `explicit`, else `GRAFLOW_STUDIO_CONFIG`, else
/// `<config dir>/config.ron`.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("GRAFLOW_STUDIO_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    config_dir().map(|d| d.join("config.ron"))
}

/// Read the config file. A missing file is the empty config unless it was named explicitly.
pub fn load(path: Option<&Path>, explicit: bool) -> Result<ConfigFile, String> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(ConfigFile::default());
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("{}:{e}", path.display()))
}

/// Parse config text.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .from_str(text)
        .map_err(|e| format!("{}:{}: {}", e.span.start.line, e.span.start.col, e.code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_partial_config() {
        let c = parse(r#"(theme: "light", keys: {"run": ["ctrl-r"]})"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert_eq!(c.mouse, None);
        assert_eq!(c.keys["run"], vec!["ctrl-r".to_string()]);
        let e = parse("(colour: 1)").err().unwrap_or_default();
        assert!(e.starts_with("1:"), "{e}");
    }

    #[test]
    fn a_missing_file_is_empty_unless_named() {
        let p = Path::new("/nonexistent/graflow/config.ron");
        assert_eq!(load(Some(p), false), Ok(ConfigFile::default()));
        assert!(load(Some(p), true).is_err());
    }
}
