//! Keys to actions: the key notation (`q`, `ctrl-c`, `shift-tab`, `f1`, `space`), the default
//! bindings taken from the action registry, overrides from the config file, and the lookup per
//! [`Context`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{ActionId, ActionInfo, Context, REGISTRY, by_name};

/// A key with its modifiers, as written in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    /// The key.
    pub code: KeyCode,
    /// Ctrl and Alt (Shift is part of the character for printable keys).
    pub ctrl: bool,
    /// Alt.
    pub alt: bool,
}

impl KeySpec {
    /// Parse `ctrl-c`, `alt-x`, `G`, `?`, `enter`, `f5`, `space`, `backtab`, `-`, …
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1 && (lower.starts_with("ctrl-") || lower.starts_with("c-")) {
                ctrl = true;
                rest = &rest[rest.find('-').map_or(0, |i| i + 1)..];
            } else if rest.len() > 1 && (lower.starts_with("alt-") || lower.starts_with("a-")) {
                alt = true;
                rest = &rest[rest.find('-').map_or(0, |i| i + 1)..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" => KeyCode::Insert,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "space" => KeyCode::Char(' '),
            "minus" => KeyCode::Char('-'),
            "plus" => KeyCode::Char('+'),
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                let n: u8 = f[1..]
                    .parse()
                    .map_err(|_| format!("bad function key '{text}'"))?;
                if !(1..=24).contains(&n) {
                    return Err(format!("no function key '{text}' (f1 to f24)"));
                }
                KeyCode::F(n)
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                    _ => return Err(format!("unknown key '{text}'")),
                }
            }
        };
        Ok(KeySpec { code, ctrl, alt })
    }

    /// The key of a terminal key event.
    pub fn from_event(ev: &KeyEvent) -> KeySpec {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let code = match ev.code {
            KeyCode::Char(c) if ctrl => KeyCode::Char(c.to_ascii_lowercase()),
            other => other,
        };
        KeySpec {
            code,
            ctrl,
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            _ => f.write_str("?"),
        }
    }
}

/// The effective bindings: per context, key → action.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: HashMap<(Context, KeySpec), ActionId>,
    /// Per registry entry name, its keys (for the help and hints).
    keys: BTreeMap<&'static str, Vec<KeySpec>>,
}

impl Keymap {
    /// The defaults of the registry with `overrides` (action name → keys) applied: an override
    /// replaces every default key of that action. Returns the keymap and one message per
    /// override that could not be used.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> (Keymap, Vec<String>) {
        let mut problems = Vec::new();
        let mut keys: BTreeMap<&'static str, Vec<KeySpec>> = BTreeMap::new();
        for a in REGISTRY {
            let parsed = a
                .keys
                .iter()
                .filter_map(|k| KeySpec::parse(k).ok())
                .collect();
            keys.insert(a.name, parsed);
        }
        for (name, list) in overrides {
            let Some(info) = by_name(name) else {
                problems.push(format!("keys: no action named '{name}'"));
                continue;
            };
            let mut parsed = Vec::new();
            for k in list {
                match KeySpec::parse(k) {
                    Ok(spec) => parsed.push(spec),
                    Err(e) => problems.push(format!("keys.{name}: {e}")),
                }
            }
            keys.insert(info.name, parsed);
        }
        let mut bindings = HashMap::new();
        for a in REGISTRY {
            for k in keys.get(a.name).into_iter().flatten() {
                bindings.insert((a.context, *k), a.id);
            }
        }
        (Keymap { bindings, keys }, problems)
    }

    /// The action bound to `key` in `context` (without falling back to global).
    pub fn lookup(&self, context: Context, key: KeySpec) -> Option<ActionId> {
        self.bindings.get(&(context, key)).copied()
    }

    /// The action for `key` in a pane context, else in the global context.
    pub fn resolve(&self, context: Context, key: KeySpec) -> Option<ActionId> {
        self.lookup(context, key)
            .or_else(|| self.lookup(Context::Global, key))
    }

    /// The keys of a registry entry.
    pub fn keys_of(&self, info: &ActionInfo) -> &[KeySpec] {
        self.keys.get(info.name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first key bound to the action `id` (its first registry entry), for messages and
    /// hints (`a`); the action's name in brackets when no key is bound to it.
    pub fn key_name(&self, id: ActionId) -> String {
        self.key_name_in(Context::Global, id)
    }

    /// [`Keymap::key_name`] for the entry of `id` in `context` when it has one there (`esc`
    /// stops answering is the answer box's own binding of `Back`).
    pub fn key_name_in(&self, context: Context, id: ActionId) -> String {
        let entry = REGISTRY
            .iter()
            .find(|a| a.id == id && a.context == context)
            .or_else(|| REGISTRY.iter().find(|a| a.id == id));
        match entry {
            Some(info) => self
                .keys_of(info)
                .first()
                .map_or_else(|| format!("[{}]", info.name), ToString::to_string),
            None => format!("[{id:?}]"),
        }
    }

    /// The keys of a registry entry as display strings.
    pub fn key_names(&self, info: &ActionInfo) -> Vec<String> {
        self.keys_of(info).iter().map(ToString::to_string).collect()
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&BTreeMap::new()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_come_from_the_action_ids_and_follow_the_config() {
        let default = Keymap::default();
        assert_eq!(default.key_name(ActionId::Run), "r");
        assert_eq!(default.key_name(ActionId::Back), "esc");
        let overrides = BTreeMap::from([
            ("run".to_string(), vec!["ctrl-r".to_string()]),
            ("cancel-answer".to_string(), vec!["ctrl-g".to_string()]),
        ]);
        let (keys, problems) = Keymap::new(&overrides);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(keys.key_name(ActionId::Run), "ctrl-r");
        // `Back` is bound per context: the answer box's binding is its own.
        assert_eq!(keys.key_name_in(Context::Answer, ActionId::Back), "ctrl-g");
        assert_eq!(keys.key_name(ActionId::Back), "esc");
        let (none, _) = Keymap::new(&BTreeMap::from([("run".to_string(), vec![])]));
        assert_eq!(none.key_name(ActionId::Run), "[run]");
    }

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeySpec {
        KeySpec::from_event(&KeyEvent::new(code, modifiers))
    }

    #[test]
    fn parses_the_notation() {
        assert_eq!(
            KeySpec::parse("ctrl-c"),
            Ok(key(KeyCode::Char('c'), KeyModifiers::CONTROL))
        );
        assert_eq!(
            KeySpec::parse("G"),
            Ok(key(KeyCode::Char('G'), KeyModifiers::SHIFT))
        );
        assert_eq!(
            KeySpec::parse("f1"),
            Ok(key(KeyCode::F(1), KeyModifiers::NONE))
        );
        assert_eq!(
            KeySpec::parse("space"),
            Ok(key(KeyCode::Char(' '), KeyModifiers::NONE))
        );
        assert_eq!(
            KeySpec::parse("-"),
            Ok(key(KeyCode::Char('-'), KeyModifiers::NONE))
        );
        assert!(KeySpec::parse("ctrl-").is_err());
        assert!(KeySpec::parse("hyper-x").is_err());
        assert!(KeySpec::parse("f99").is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let km = Keymap::default();
        let r = KeySpec::parse("r").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(km.resolve(Context::Graph, r), Some(ActionId::Run));
        let f = KeySpec::parse("f").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            km.resolve(Context::Graph, f),
            Some(ActionId::ToggleFocusMode)
        );
        assert_eq!(
            km.resolve(Context::Inspector, f),
            Some(ActionId::ToggleFollow)
        );

        let mut o = BTreeMap::new();
        o.insert("run".to_string(), vec!["ctrl-r".to_string()]);
        o.insert("nope".to_string(), vec!["x".to_string()]);
        let (km, problems) = Keymap::new(&o);
        assert_eq!(km.resolve(Context::Graph, r), None);
        let cr = KeySpec::parse("ctrl-r").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(km.resolve(Context::Graph, cr), Some(ActionId::Run));
        assert_eq!(problems, vec!["keys: no action named 'nope'".to_string()]);
    }
}
