//! The `.ckpt` file format (documented in docs/checkpoints.md):
//!
//! ```text
//! {"format":"graflow-checkpoint","schema_version":1,"payload_bytes":N,"crc32":"8 hex digits"}\n
//! <N bytes: the payload, one JSON object (a `Checkpoint`)>
//! ```
//! Schema 2 is the same with the payload compressed (zstd): the header adds
//! `"compression":"zstd"` and `"content_bytes"` (the JSON's length); length, CRC-32 and
//! signature are those of the stored (compressed) bytes. Plain payloads are still written as
//! schema 1, which older builds read.
//! The header is read first: a file that is not a checkpoint, was written by a newer schema,
//! is shorter or longer than announced, or whose payload does not match its CRC-32 is refused
//! with a message saying which — before any of it is trusted.

use std::io::{Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CheckpointError;
use super::snapshot::RunSnapshot;

/// The newest schema this build reads (and writes, for a compressed payload).
pub const SCHEMA_VERSION: u32 = 2;
/// The schema of a checkpoint whose payload is plain JSON.
pub(super) const PLAIN_SCHEMA: u32 = 1;
/// The name of zstd in a header's `compression`.
const ZSTD: &str = "zstd";
/// The zstd level: the fastest, since a run waits while its checkpoint is written.
const ZSTD_LEVEL: i32 = 1;

/// The most a zstd frame can expand (a 128 KiB block stored in 4 bytes, with room for the
/// frame's header): a header announcing more is refused before anything is decompressed.
const MAX_EXPANSION: u64 = 40_000;

/// Payloads of more JSON than this are compressed by default (1 MiB).
pub const DEFAULT_COMPRESS_ABOVE: u64 = 1 << 20;

/// When a checkpoint's payload is compressed (zstd). Reading needs no setting: the header
/// says how the payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Never: the payload is plain JSON, readable by any graflow.
    Never,
    /// When the payload's JSON is longer than this many bytes.
    Above(u64),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Above(DEFAULT_COMPRESS_ABOVE)
    }
}

/// What [`write_with`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes written: header and stored payload.
    pub bytes: u64,
    /// The payload's JSON length when it was stored compressed (`None`: stored plain).
    pub content_bytes: Option<u64>,
}
const FORMAT: &str = "graflow-checkpoint";

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A task's deferred `checkpoint(meta)`: written after it completed and its successors
    /// were queued.
    Deferred,
    /// A task's `checkpoint_now(meta)`: written at once; the task runs again on resume.
    Immediate,
    /// Asked by the host (the studio, a signal handler) while the run was going.
    Host,
    /// The run paused waiting for human feedback.
    Feedback,
}

/// The workflow a checkpoint belongs to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkflowSource {
    /// Workflow name.
    pub name: String,
    /// The file it was loaded from, when it was.
    #[serde(default)]
    pub path: Option<String>,
    /// SHA-256 of the file's text.
    #[serde(default)]
    pub hash: Option<String>,
    /// The file's text (RON), so a run can resume even when the file changed or moved.
    #[serde(default)]
    pub source: Option<String>,
}

/// Everything a `.ckpt` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The run.
    pub run_id: String,
    /// Checkpoint number within the run (1, 2, …).
    pub seq: u32,
    /// RFC 3339 time of writing.
    pub created_at: String,
    /// Why it was written.
    pub reason: Reason,
    /// The task that asked for it, if one did.
    #[serde(default)]
    pub task: Option<String>,
    /// The workflow.
    pub workflow: WorkflowSource,
    /// User metadata, enriched with `task_id`, `cycle` and `mode` when a task asked.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The run state.
    pub snapshot: RunSnapshot,
    /// Open human-feedback requests.
    #[serde(default)]
    pub feedback: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    schema_version: u32,
    payload_bytes: usize,
    crc32: String,
    /// HMAC-SHA256 of the payload with the key of the state dir that wrote it (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    /// How the payload is compressed (`zstd`), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compression: Option<String>,
    /// The payload's length once decompressed, when it is compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_bytes: Option<u64>,
}

fn mac_of(key: &[u8], payload: &[u8]) -> Option<hmac::Hmac<sha2::Sha256>> {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(payload);
    Some(mac)
}

/// Serialize a checkpoint: header line, then payload.
pub fn encode(ckpt: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    encode_signed(ckpt, None)
}

/// Whether `bytes` (a whole `.ckpt`) carry a signature made with `key`.
pub fn signed_with(bytes: &[u8], key: &[u8]) -> bool {
    use hmac::Mac;
    let Some(newline) = bytes.iter().take(HEADER_READ).position(|b| *b == b'\n') else {
        return false;
    };
    let Ok(header) = serde_json::from_slice::<Header>(&bytes[..newline]) else {
        return false;
    };
    let Some(given) = header.mac.as_deref().and_then(hex) else {
        return false;
    };
    mac_of(key, &bytes[newline + 1..]).is_some_and(|m| m.verify_slice(&given).is_ok())
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Serialize a checkpoint, signed with `key` when given (see `docs/checkpoints.md`, Trust).
pub fn encode_signed(ckpt: &Checkpoint, key: Option<&[u8]>) -> Result<Vec<u8>, CheckpointError> {
    let mut out = std::io::Cursor::new(Vec::new());
    write_signed(&mut out, ckpt, key)
        .map_err(|e| CheckpointError::Invalid(format!("cannot serialize: {e}")))?;
    Ok(out.into_inner())
}

/// Bytes kept for the header line (newline included): the longest header fits.
const HEADER_SPACE: usize = 256;

/// Write a checkpoint to `w` in one pass: room for the header, the payload serialized straight
/// into `w` with its length, CRC-32 and signature computed on the way, then the header written
/// into its room (padded with spaces, which JSON ignores). Returns the bytes written.
pub fn write_signed<W: Write + Seek>(
    w: &mut W,
    ckpt: &Checkpoint,
    key: Option<&[u8]>,
) -> std::io::Result<u64> {
    write_with(w, ckpt, key, Compression::Never).map(|written| written.bytes)
}

/// [`write_signed`], the payload compressed as `compression` says.
pub fn write_with<W: Write + Seek>(
    w: &mut W,
    ckpt: &Checkpoint,
    key: Option<&[u8]>,
    compression: Compression,
) -> std::io::Result<Written> {
    use hmac::Mac;
    let start = w.stream_position()?;
    w.write_all(&[b' '; HEADER_SPACE])?;
    let mut sink = Summing {
        inner: &mut *w,
        crc: crc32fast::Hasher::new(),
        mac: key.and_then(|k| mac_of(k, &[])),
        len: 0,
    };
    let content_bytes = match compression {
        Compression::Never => {
            serde_json::to_writer(&mut sink, ckpt)?;
            None
        }
        Compression::Above(limit) => {
            let mut body = Compressing::new(&mut sink, limit);
            serde_json::to_writer(&mut body, ckpt)?;
            body.finish()?
        }
    };
    let Summing { crc, mac, len, .. } = sink;
    let header = Header {
        format: FORMAT.into(),
        schema_version: if content_bytes.is_some() {
            SCHEMA_VERSION
        } else {
            PLAIN_SCHEMA
        },
        payload_bytes: len as usize,
        crc32: format!("{:08x}", crc.finalize()),
        mac: mac.map(|m| {
            m.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        }),
        compression: content_bytes.map(|_| ZSTD.to_string()),
        content_bytes,
    };
    let mut line = serde_json::to_vec(&header)?;
    if line.len() >= HEADER_SPACE {
        return Err(std::io::Error::other("the checkpoint header is too long"));
    }
    line.resize(HEADER_SPACE - 1, b' ');
    line.push(b'\n');
    let end = w.stream_position()?;
    w.seek(SeekFrom::Start(start))?;
    w.write_all(&line)?;
    w.seek(SeekFrom::Start(end))?;
    Ok(Written {
        bytes: end - start,
        content_bytes,
    })
}

/// A payload's JSON on its way out: held in memory up to a limit, written plain if it ends
/// there, else compressed from its first byte on.
struct Compressing<'a, W: Write> {
    state: Option<Body<'a, W>>,
    limit: u64,
    content: u64,
}

enum Body<'a, W: Write> {
    /// Not past the limit yet.
    Held { out: &'a mut W, held: Vec<u8> },
    /// Past it: compressing.
    Zstd(zstd::Encoder<'static, &'a mut W>),
}

impl<'a, W: Write> Compressing<'a, W> {
    fn new(out: &'a mut W, limit: u64) -> Self {
        let held = Vec::with_capacity(limit.min(64 * 1024) as usize);
        Compressing {
            state: Some(Body::Held { out, held }),
            limit,
            content: 0,
        }
    }

    /// Write what is held, or end the compressed frame; returns the JSON's length when it was
    /// compressed.
    fn finish(mut self) -> std::io::Result<Option<u64>> {
        match self.state.take() {
            Some(Body::Held { out, held }) => {
                out.write_all(&held)?;
                Ok(None)
            }
            Some(Body::Zstd(encoder)) => {
                encoder.finish()?;
                Ok(Some(self.content))
            }
            None => Err(std::io::Error::other("the compressed payload broke off")),
        }
    }
}

impl<W: Write> Write for Compressing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let state = match self.state.take() {
            Some(Body::Held { out, mut held }) => {
                if self.content + buf.len() as u64 <= self.limit {
                    held.extend_from_slice(buf);
                    Body::Held { out, held }
                } else {
                    let mut encoder = zstd::Encoder::new(out, ZSTD_LEVEL)?;
                    encoder.write_all(&held)?;
                    Body::Zstd(encoder)
                }
            }
            Some(Body::Zstd(encoder)) => Body::Zstd(encoder),
            None => return Err(std::io::Error::other("the compressed payload broke off")),
        };
        let n = match self.state.insert(state) {
            Body::Zstd(encoder) => encoder.write(buf)?,
            Body::Held { .. } => buf.len(),
        };
        self.content += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.state.as_mut() {
            Some(Body::Zstd(encoder)) => encoder.flush(),
            _ => Ok(()),
        }
    }
}

/// A writer that passes bytes on while counting them and feeding the CRC and the MAC.
struct Summing<'a, W: Write> {
    inner: &'a mut W,
    crc: crc32fast::Hasher,
    mac: Option<hmac::Hmac<sha2::Sha256>>,
    len: u64,
}

impl<W: Write> Write for Summing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use hmac::Mac;
        let n = self.inner.write(buf)?;
        let written = &buf[..n];
        self.crc.update(written);
        if let Some(mac) = self.mac.as_mut() {
            mac.update(written);
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Validate and parse a checkpoint's bytes.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    decode_from(bytes, None)
        .map(|(ckpt, _)| ckpt)
        .map_err(|e| match e {
            Unreadable::Io(e) => CheckpointError::Invalid(format!("cannot read it: {e}")),
            Unreadable::Refused(e) => e,
        })
}

/// Validate and parse a checkpoint's bytes; also say whether it is signed with `key` (the
/// same checks as a file's: header, length, CRC-32, decompression, schema).
pub fn decode_trusted(
    bytes: &[u8],
    key: Option<&[u8]>,
) -> Result<(Checkpoint, bool), CheckpointError> {
    decode_from(bytes, key).map_err(|e| match e {
        Unreadable::Io(e) => CheckpointError::Invalid(format!("cannot read it: {e}")),
        Unreadable::Refused(e) => e,
    })
}

/// Why [`decode_from`] gave up: reading failed, or the content was refused.
pub(super) enum Unreadable {
    /// Reading failed.
    Io(std::io::Error),
    /// The checkpoint was refused.
    Refused(CheckpointError),
}

impl From<CheckpointError> for Unreadable {
    fn from(e: CheckpointError) -> Self {
        Unreadable::Refused(e)
    }
}

/// Validate and parse a checkpoint as it is read from `reader` (see [`super::read`]); also
/// say whether it is signed with `key`. Nothing parsed is returned unless the payload has the
/// announced length and CRC-32.
pub(super) fn decode_from<R: Read + Send>(
    mut reader: R,
    key: Option<&[u8]>,
) -> Result<(Checkpoint, bool), Unreadable> {
    use super::read::{Chunks, Failure, Summed, Window, pump};
    let mut head = Vec::with_capacity(HEADER_READ);
    (&mut reader)
        .take(HEADER_READ as u64)
        .read_to_end(&mut head)
        .map_err(Unreadable::Io)?;
    let newline = head
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(CheckpointError::NotACheckpoint)?;
    let header: Header =
        serde_json::from_slice(&head[..newline]).map_err(|_| CheckpointError::NotACheckpoint)?;
    if header.format != FORMAT {
        return Err(CheckpointError::NotACheckpoint.into());
    }
    if header.schema_version > SCHEMA_VERSION {
        return Err(CheckpointError::NewerSchema {
            found: header.schema_version,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    if header.schema_version == 0 {
        return Err(CheckpointError::Invalid("schema_version 0 does not exist".into()).into());
    }
    let given_mac = header.mac.as_deref().and_then(hex);
    let mac = key
        .filter(|_| given_mac.is_some())
        .and_then(|k| mac_of(k, &[]));
    let zstd_limit = match header.compression.as_deref() {
        None => None,
        Some(ZSTD) => {
            let content_bytes = header.content_bytes.ok_or_else(|| {
                CheckpointError::Invalid("a zstd payload without its content_bytes".into())
            })?;
            let most = (header.payload_bytes as u64).saturating_mul(MAX_EXPANSION);
            if content_bytes > most {
                return Err(CheckpointError::Invalid(format!(
                    "the header says {} stored bytes decompress to {content_bytes}: zstd cannot \
                     expand that much",
                    header.payload_bytes
                ))
                .into());
            }
            Some(content_bytes)
        }
        Some(other) => {
            return Err(CheckpointError::Invalid(format!(
                "the payload is compressed with '{}', which this graflow does not read",
                other.chars().take(40).collect::<String>()
            ))
            .into());
        }
    };
    let raw = Summed::new(
        std::io::Cursor::new(&head[newline + 1..]).chain(reader),
        mac,
    );
    // One thread reads, checks and decompresses the stored bytes; this one parses the JSON.
    let (parsed, pumped) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let pumping = scope.spawn(move || pump(raw, zstd_limit, tx));
        let parsed = Window::new(Chunks::new(rx)).checkpoint();
        (parsed, pumping.join())
    });
    let pumped = pumped
        .map_err(|_| Unreadable::Io(std::io::Error::other("the checkpoint reader stopped")))?;
    if let Some(e) = pumped.io_error {
        return Err(Unreadable::Io(e));
    }
    let (len, crc, mac) = (pumped.raw.len, pumped.raw.crc, pumped.raw.mac);
    let parsed = match (zstd_limit, pumped.decoded, pumped.not_zstd) {
        (None, _, _) => parsed,
        (Some(_), _, Some(e)) => Err(Failure::Syntax(format!(
            "the payload does not decompress: {e}"
        ))),
        (Some(limit), Some(produced), None) if produced != limit => Err(Failure::Syntax(format!(
            "the payload decompresses to {} bytes{}, not the {limit} its header says",
            produced.min(limit),
            if produced > limit { " or more" } else { "" }
        ))),
        (Some(_), _, None) => parsed,
    };
    let found = len as usize;
    if found < header.payload_bytes {
        return Err(CheckpointError::Truncated {
            expected: header.payload_bytes,
            found,
        }
        .into());
    }
    if found > header.payload_bytes {
        return Err(CheckpointError::TooLong {
            expected: header.payload_bytes,
            found,
        }
        .into());
    }
    let crc = format!("{:08x}", crc.finalize());
    if crc != header.crc32 {
        return Err(CheckpointError::Corrupted {
            expected: header.crc32,
            found: crc,
        }
        .into());
    }
    let signed = match (mac, given_mac) {
        (Some(mac), Some(given)) => {
            use hmac::Mac;
            mac.verify_slice(&given).is_ok()
        }
        _ => false,
    };
    match parsed {
        Ok(ckpt) => Ok((ckpt, signed)),
        Err(Failure::Io(e)) => Err(Unreadable::Io(e)),
        Err(Failure::Syntax(e)) => {
            Err(CheckpointError::Invalid(format!("the payload does not parse: {e}")).into())
        }
    }
}

/// Bytes the header line must be found in.
const HEADER_READ: usize = 4096;

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A small checkpoint for tests.
    pub(in crate::checkpoint) fn sample() -> Checkpoint {
        Checkpoint {
            run_id: "r1".into(),
            seq: 1,
            created_at: "2026-01-01T00:00:00Z".into(),
            reason: Reason::Deferred,
            task: Some("a".into()),
            workflow: WorkflowSource {
                name: "wf".into(),
                ..WorkflowSource::default()
            },
            metadata: Map::new(),
            snapshot: RunSnapshot::default(),
            feedback: Vec::new(),
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample()).unwrap();
        assert!(bytes.starts_with(br#"{"format":"graflow-checkpoint","schema_version":1,"#));
        assert_eq!(decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn refusals_say_why() {
        let bytes = encode(&sample()).unwrap();
        assert!(matches!(
            decode(&bytes[..bytes.len() - 3]),
            Err(CheckpointError::Truncated { .. })
        ));
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"{}\n");
        assert!(matches!(
            decode(&longer),
            Err(CheckpointError::TooLong { .. })
        ));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x01;
        assert!(matches!(
            decode(&flipped),
            Err(CheckpointError::Corrupted { .. })
        ));
        let newer = String::from_utf8(bytes.clone()).unwrap().replacen(
            "\"schema_version\":1",
            "\"schema_version\":9",
            1,
        );
        assert!(matches!(
            decode(newer.as_bytes()),
            Err(CheckpointError::NewerSchema {
                found: 9,
                supported: 2
            })
        ));
        assert!(matches!(
            decode(b"hello\nworld"),
            Err(CheckpointError::NotACheckpoint)
        ));
        assert!(matches!(decode(b""), Err(CheckpointError::NotACheckpoint)));
    }

    /// A checkpoint whose channel holds `n` values of about 1 KB.
    fn big(n: usize) -> Checkpoint {
        let mut ckpt = sample();
        let values = (0..n)
            .map(|i| (format!("k{i}"), serde_json::json!(format!("{i:>1000}"))))
            .collect();
        ckpt.snapshot.channel = super::super::snapshot::ChannelContent::Values(values);
        ckpt
    }

    fn written(ckpt: &Checkpoint, key: Option<&[u8]>, compression: Compression) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        write_with(&mut out, ckpt, key, compression).unwrap();
        out.into_inner()
    }

    fn read_signed(
        bytes: &[u8],
        key: Option<&[u8]>,
    ) -> Result<(Checkpoint, bool), CheckpointError> {
        decode_from(bytes, key).map_err(|e| match e {
            Unreadable::Io(e) => CheckpointError::Invalid(e.to_string()),
            Unreadable::Refused(e) => e,
        })
    }

    #[test]
    fn big_payloads_are_compressed_and_read_back_equal() {
        let ckpt = big(3_000);
        let plain = written(&ckpt, None, Compression::Never);
        let packed = written(&ckpt, Some(b"key"), Compression::default());
        assert!(
            packed.len() * 5 < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        let header = String::from_utf8_lossy(&packed[..HEADER_SPACE]).to_string();
        assert!(
            header.contains(r#""schema_version":2"#) && header.contains(r#""compression":"zstd""#),
            "{header}"
        );
        let (back, signed) = read_signed(&packed, Some(b"key")).unwrap();
        assert!(signed);
        assert_eq!(back, ckpt);
        assert_eq!(decode(&plain).unwrap(), ckpt);
        // Small payloads stay plain (schema 1), whatever the setting.
        let small = written(&sample(), None, Compression::default());
        assert!(small.starts_with(br#"{"format":"graflow-checkpoint","schema_version":1,"#));
        assert_eq!(small, written(&sample(), None, Compression::Never));
    }

    #[test]
    fn damaged_compressed_payloads_are_refused_saying_why() {
        let packed = written(&big(2_000), None, Compression::Above(1024));
        assert!(matches!(
            decode(&packed[..packed.len() - 3]),
            Err(CheckpointError::Truncated { .. })
        ));
        let mut flipped = packed.clone();
        let middle = HEADER_SPACE + (packed.len() - HEADER_SPACE) / 2;
        flipped[middle] ^= 0x40;
        assert!(matches!(
            decode(&flipped),
            Err(CheckpointError::Corrupted { .. })
        ));
        let mut longer = packed.clone();
        longer.extend_from_slice(b"junk");
        assert!(matches!(
            decode(&longer),
            Err(CheckpointError::TooLong { .. })
        ));
        // A header that lies about the JSON's length (the stored bytes intact) is refused
        // before more than it announced is decompressed.
        let text = String::from_utf8_lossy(&packed[..HEADER_SPACE]).to_string();
        let announced: u64 = text
            .split(r#""content_bytes":"#)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        for lie in [announced / 2, announced + 10] {
            let header = text.replace(
                &format!(r#""content_bytes":{announced}"#),
                &format!(r#""content_bytes":{lie}"#),
            );
            let mut bytes = header.trim_end().as_bytes().to_vec();
            bytes.resize(HEADER_SPACE - 1, b' ');
            bytes.push(b'\n');
            bytes.extend_from_slice(&packed[HEADER_SPACE..]);
            let e = decode(&bytes).unwrap_err().to_string();
            assert!(e.contains("decompresses to"), "{lie}: {e}");
        }
        // Stored bytes that are not zstd, with a matching CRC, are refused as such.
        let junk = b"definitely not zstd".to_vec();
        let header = format!(
            r#"{{"format":"graflow-checkpoint","schema_version":2,"payload_bytes":{},"crc32":"{:08x}","compression":"zstd","content_bytes":10}}"#,
            junk.len(),
            crc32fast::hash(&junk)
        );
        let mut bytes = header.into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&junk);
        let e = decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("does not decompress"), "{e}");
        let other = String::from_utf8_lossy(&bytes).replace(r#""zstd""#, r#""lz4""#);
        let e = decode(other.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("'lz4'"), "{e}");
    }
}
