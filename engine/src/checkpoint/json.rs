//! A JSON writer for [`Value`]s, made for checkpoints of big channels: strings are scanned
//! a block of bytes at a time for what needs escaping and copied in runs, several times faster than
//! `serde_json`'s byte-by-byte escaper, with byte-for-byte the same output (a property test
//! holds it to that).

use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;
use serde_json::value::RawValue;

/// Append the JSON text of `value` to `out`, exactly as `serde_json::to_writer` writes it.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, v);
            }
            out.push(b'}');
        }
    }
}

/// Append `s` as a JSON string (quotes included).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip plain blocks a whole block at a time (the test compiles to vector compares).
        if let Some(block) = bytes.get(i..i + BLOCK)
            && block
                .iter()
                .fold(0u8, |any, &b| any | u8::from(needs_escape(b)))
                == 0
        {
            i += BLOCK;
            continue;
        }
        let b = bytes[i];
        if needs_escape(b) {
            out.extend_from_slice(&bytes[start..i]);
            write_escape(out, b);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append `s` as a JSON string (quotes included) to a `String`.
pub fn push_json_str(out: &mut String, s: &str) {
    let mut bytes = Vec::with_capacity(s.len() + 2);
    write_str(&mut bytes, s);
    // Escaping keeps text UTF-8: only ASCII bytes are replaced, by ASCII.
    out.push_str(&String::from_utf8_lossy(&bytes));
}

/// Bytes tested at once when looking for the next byte to escape.
const BLOCK: usize = 32;

/// Whether `b` is escaped in a JSON string: control characters, `"` and `\` (as serde_json).
fn needs_escape(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Append the escape of `b` (one [`needs_escape`] says yes to).
fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// `text`, JSON written by [`write_value`], as a [`RawValue`] without parsing it again.
pub fn raw(text: &str) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(&Verbatim(text))
}

/// JSON text that serde_json writes as it is: the protocol its own `RawValue` serializes with
/// (other serializers see a struct: use it with serde_json only).
pub(crate) struct Verbatim<'a>(pub(crate) &'a str);

/// The name serde_json recognises for raw JSON text.
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

impl Serialize for Verbatim<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct(RAW_TOKEN, 1)?;
        s.serialize_field(RAW_TOKEN, self.0)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(v: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v);
        String::from_utf8(out).expect("utf-8")
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x7f\"\\\\]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn writes_what_serde_json_writes(v in values()) {
            prop_assert_eq!(text(&v), serde_json::to_string(&v).expect("serializes"));
        }

        #[test]
        fn strings_of_any_bytes_match(s in "(?s).{0,200}") {
            let v = Value::String(s);
            prop_assert_eq!(text(&v), serde_json::to_string(&v).expect("serializes"));
        }
    }

    #[test]
    fn every_ascii_byte_at_every_offset() {
        for b in 0u8..=0x7f {
            for offset in 0..17 {
                let s = format!("{}{}{}", "a".repeat(offset), b as char, "z".repeat(9));
                let v = Value::String(s);
                assert_eq!(text(&v), serde_json::to_string(&v).expect("serializes"));
            }
        }
    }

    #[test]
    fn raw_text_is_written_verbatim() {
        let v = serde_json::json!({"k": ["a\"b", 1.5, null, {"x": "\u{1}"}]});
        let raw = raw(&text(&v)).expect("raw");
        assert_eq!(raw.get(), serde_json::to_string(&v).expect("serializes"));
        let outer = serde_json::to_string(&vec![&raw]).expect("serializes");
        assert_eq!(
            outer,
            format!("[{}]", serde_json::to_string(&v).expect("json"))
        );
    }
}
