//! The `.ckpt` file format, version 1 (documented in docs/checkpoints.md):
//!
//! ```text
//! {"format":"graflow-checkpoint","schema_version":1,"payload_bytes":N,"crc32":"8 hex digits"}\n
//! <N bytes: the payload, one JSON object (a `Checkpoint`)>
//! ```
//! The header is read first: a file that is not a checkpoint, was written by a newer schema,
//! is shorter or longer than announced, or whose payload does not match its CRC-32 is refused
//! with a message saying which — before any of it is trusted.

use std::io::{Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::CheckpointError;
use super::snapshot::RunSnapshot;

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
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
    use hmac::Mac;
    let start = w.stream_position()?;
    w.write_all(&[b' '; HEADER_SPACE])?;
    let mut sink = Summing {
        inner: &mut *w,
        crc: crc32fast::Hasher::new(),
        mac: key.and_then(|k| mac_of(k, &[])),
        len: 0,
    };
    serde_json::to_writer(&mut sink, ckpt)?;
    let Summing { crc, mac, len, .. } = sink;
    let header = Header {
        format: FORMAT.into(),
        schema_version: SCHEMA_VERSION,
        payload_bytes: len as usize,
        crc32: format!("{:08x}", crc.finalize()),
        mac: mac.map(|m| {
            m.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        }),
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
    Ok(end - start)
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
pub(super) fn decode_from<R: Read>(
    mut reader: R,
    key: Option<&[u8]>,
) -> Result<(Checkpoint, bool), Unreadable> {
    use super::read::{Failure, Window};
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
    let mut window = Window::new(reader, &head[newline + 1..], mac);
    let parsed = window.checkpoint();
    match window.drain() {
        Err(Failure::Io(e)) => return Err(Unreadable::Io(e)),
        Err(Failure::Syntax(_)) | Ok(()) => {}
    }
    let found = window.len as usize;
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
    let crc = format!("{:08x}", window.crc.clone().finalize());
    if crc != header.crc32 {
        return Err(CheckpointError::Corrupted {
            expected: header.crc32,
            found: crc,
        }
        .into());
    }
    let signed = match (window.mac.take(), given_mac) {
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
                supported: 1
            })
        ));
        assert!(matches!(
            decode(b"hello\nworld"),
            Err(CheckpointError::NotACheckpoint)
        ));
        assert!(matches!(decode(b""), Err(CheckpointError::NotACheckpoint)));
    }
}
