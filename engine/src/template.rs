//! A tiny `{{placeholder}}` template language for HTTP bodies, URLs and webhook bodies.
//!
//! `{{name}}` inserts a string value as is and any other value as JSON; `{{json name}}` always
//! inserts JSON (strings quoted and escaped). Names are looked up by the caller, so each use
//! decides what it offers (`input.fetch`, `channel.key`, `prompt`, …). An unknown name is an
//! error naming it.

use serde_json::Value;
use thiserror::Error;

/// A template does not parse, or names a value its user does not offer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// A `{{` has no `}}` after it.
    #[error("unclosed '{{{{' at byte {offset}")]
    Unclosed {
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A `{{ }}` names nothing.
    #[error("empty placeholder at byte {offset}")]
    Empty {
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A placeholder names a value the lookup does not know.
    #[error("unknown placeholder '{{{{{name}}}}}'")]
    Unknown {
        /// The name inside the braces.
        name: String,
    },
}

impl From<TemplateError> for String {
    fn from(e: TemplateError) -> String {
        e.to_string()
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Slot { name: String, json: bool },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parse `src`; an unclosed `{{` is an error giving its byte offset.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = src;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError::Unclosed {
                    offset: offset + open,
                });
            };
            let inner = after[..close].trim();
            let (name, json) = match inner.strip_prefix("json ") {
                Some(n) => (n.trim(), true),
                None => (inner, false),
            };
            if name.is_empty() {
                return Err(TemplateError::Empty {
                    offset: offset + open,
                });
            }
            pieces.push(Piece::Slot {
                name: name.to_string(),
                json,
            });
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// The name of the one placeholder the template is, when it is nothing else: `{{name}}`
    /// (not `{{json name}}`, no text around it).
    pub fn single_placeholder(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Slot { name, json: false }] => Some(name),
            _ => None,
        }
    }

    /// The placeholder names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Slot { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fill the placeholders; `lookup` returns `None` for an unknown name.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<Value>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot { name, json } => {
                    let value = lookup(name)
                        .ok_or_else(|| TemplateError::Unknown { name: name.clone() })?;
                    match (&value, json) {
                        (Value::String(s), false) => out.push_str(s),
                        _ => out.push_str(&value.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The values a template in a task may name: `run_id`, `task_id`, `cycle`, `data`, `inputs`,
/// `input.<id>`, `result.<id>`, `channel.<key>` (unknown names are left out; a missing input,
/// result or key is null).
pub(crate) async fn context_values(
    ctx: &crate::context::TaskContext,
    names: Vec<String>,
) -> Result<std::collections::BTreeMap<String, Value>, crate::handler::TaskError> {
    let mut values = std::collections::BTreeMap::new();
    for name in names {
        let value = match name.as_str() {
            "run_id" => Some(Value::from(ctx.run_id())),
            "task_id" => Some(Value::from(ctx.task_id())),
            "cycle" => Some(Value::from(ctx.cycle())),
            "data" => Some(ctx.data().clone()),
            "inputs" => Some(serde_json::to_value(ctx.inputs())?),
            other => {
                if let Some(id) = other.strip_prefix("input.") {
                    Some(ctx.input(id).unwrap_or(Value::Null))
                } else if let Some(id) = other.strip_prefix("result.") {
                    Some(ctx.result(id).unwrap_or(Value::Null))
                } else if let Some(key) = other.strip_prefix("channel.") {
                    Some(ctx.channel().get(key).await?.unwrap_or(Value::Null))
                } else {
                    None
                }
            }
        };
        if let Some(v) = value {
            values.insert(name, v);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(name: &str) -> Option<Value> {
        match name {
            "who" => Some(json!("Ada \"L\"")),
            "rows" => Some(json!([1, 2])),
            _ => None,
        }
    }

    #[test]
    fn strings_raw_values_as_json() {
        let t = Template::parse(r#"{"who": {{json who}}, "name": "{{who}}", "rows": {{ rows }}}"#)
            .unwrap();
        assert_eq!(
            t.render(lookup).unwrap(),
            r#"{"who": "Ada \"L\"", "name": "Ada "L"", "rows": [1,2]}"#
        );
        assert_eq!(t.names().collect::<Vec<_>>(), ["who", "who", "rows"]);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            Template::parse("a {{b").unwrap_err(),
            TemplateError::Unclosed { offset: 2 }
        );
        assert_eq!(
            Template::parse("{{ }}").unwrap_err().to_string(),
            "empty placeholder at byte 0"
        );
        let t = Template::parse("{{nope}}").unwrap();
        assert_eq!(
            t.render(lookup).unwrap_err().to_string(),
            "unknown placeholder '{{nope}}'"
        );
        assert_eq!(
            Template::parse("plain").unwrap().render(lookup).unwrap(),
            "plain"
        );
    }
}
