//! Reading a checkpoint's payload as it comes off the disk. A paused run's channel can take
//! hundreds of megabytes: its values are parsed one at a time from a small window of the
//! file, so a resume never holds the file's bytes and the channel's values at once. The rest
//! of the payload (small: results, counters, branches) is gathered as text, with the channel
//! left empty, and parsed by serde as a whole. The window only finds where each value ends;
//! serde_json parses every byte, so what is accepted is exactly JSON.
//!
//! Two threads share the work: a [`pump`] reads the stored bytes, computes their length,
//! CRC-32 and signature and (for a compressed payload) decompresses them; the caller's thread
//! parses the JSON from the chunks it hands over. The caller uses what was parsed only once
//! the stored bytes' checks match the header.

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde_json::Value;

use super::file::Checkpoint;
use super::snapshot::ChannelContent;

/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;

/// Why a payload could not be read.
pub(super) enum Failure {
    /// Reading failed.
    Io(io::Error),
    /// The bytes are not a checkpoint's JSON.
    Syntax(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// A reader that passes the stored payload on while computing its length, CRC-32 and MAC
/// (for a compressed payload, whose checks are of the stored bytes, not of the JSON).
pub(super) struct Summed<R> {
    inner: R,
    /// The CRC-32 of the bytes read.
    pub crc: crc32fast::Hasher,
    /// Their HMAC, when one is checked.
    pub mac: Option<hmac::Hmac<sha2::Sha256>>,
    /// Bytes read.
    pub len: u64,
}

impl<R: Read> Summed<R> {
    /// Sum what `inner` gives.
    pub fn new(inner: R, mac: Option<hmac::Hmac<sha2::Sha256>>) -> Self {
        Summed {
            inner,
            crc: crc32fast::Hasher::new(),
            mac,
            len: 0,
        }
    }
}

impl<R: Read> Read for Summed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use hmac::Mac;
        let n = self.inner.read(buf)?;
        let new = &buf[..n];
        self.crc.update(new);
        if let Some(mac) = self.mac.as_mut() {
            mac.update(new);
        }
        self.len += n as u64;
        Ok(n)
    }
}

/// Bytes the pump hands over at a time.
const PUMP_CHUNK: usize = 128 * 1024;

/// What the pump read: the stored bytes with their checks, and, for a compressed payload,
/// how much JSON it gave.
pub(super) struct Pumped<R> {
    /// The stored bytes' reader, with their length, CRC-32 and MAC.
    pub raw: Summed<R>,
    /// Reading the stored bytes failed.
    pub io_error: Option<io::Error>,
    /// JSON bytes decompressed (`None` for a plain payload, or when they did not decompress).
    pub decoded: Option<u64>,
    /// Why a compressed payload did not decompress.
    pub not_zstd: Option<io::Error>,
}

/// Read every stored byte of `raw` (decompressing at most `zstd_limit` bytes of JSON when the
/// payload is compressed) and hand the JSON to `tx` in chunks; once the receiver is gone the
/// rest is still read, for the checks. Runs on a thread of its own, so the reading, checks
/// and decompression overlap the parsing.
pub(super) fn pump<R: Read>(
    mut raw: Summed<R>,
    zstd_limit: Option<u64>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Pumped<R> {
    let (mut io_error, mut decoded, mut not_zstd) = (None, None, None);
    match zstd_limit {
        None => {
            if let Err(e) = forward(&mut raw, &tx) {
                io_error = Some(e);
            }
        }
        Some(limit) => {
            match zstd::Decoder::new(&mut raw) {
                Ok(decoder) => match forward(&mut decoder.take(limit.saturating_add(1)), &tx) {
                    Ok(n) => decoded = Some(n),
                    Err(e) => not_zstd = Some(e),
                },
                Err(e) => not_zstd = Some(e),
            }
            // The rest of the stored bytes, for their length and checks.
            if let Err(e) = io::copy(&mut raw, &mut io::sink()) {
                io_error = Some(e);
            }
        }
    }
    Pumped {
        raw,
        io_error,
        decoded,
        not_zstd,
    }
}

/// Reads the chunks a [`pump`] sends; ends when the pump is done.
pub(super) struct Chunks {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Chunks {
    /// The reader of `rx`'s chunks.
    pub fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Chunks {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Send what `from` gives to `tx` in chunks (while someone receives); returns the bytes read.
fn forward(from: &mut impl Read, tx: &std::sync::mpsc::SyncSender<Vec<u8>>) -> io::Result<u64> {
    let (mut total, mut open) = (0u64, true);
    loop {
        let mut chunk = Vec::with_capacity(PUMP_CHUNK);
        let n = from.take(PUMP_CHUNK as u64).read_to_end(&mut chunk)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        open = open && tx.send(chunk).is_ok();
    }
}

/// The payload read so far and a window on it.
pub(super) struct Window<R> {
    reader: R,
    buf: Vec<u8>,
    /// The next byte not consumed, in `buf`.
    pos: usize,
    /// Bytes dropped from the front of `buf` (for positions in messages).
    dropped: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    /// A window on the payload that `reader` gives.
    pub fn new(reader: R) -> Self {
        Window {
            reader,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            dropped: 0,
            eof: false,
        }
    }

    /// Read more bytes behind those not consumed yet; false at the end of the payload.
    fn more(&mut self) -> Result<bool, Failure> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.dropped += self.pos as u64;
            self.pos = 0;
        }
        self.buf.reserve(CHUNK);
        let n = (&mut self.reader)
            .take(CHUNK as u64)
            .read_to_end(&mut self.buf)?;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Where the next byte is in the payload, for messages.
    fn offset(&self) -> u64 {
        self.dropped + self.pos as u64
    }

    fn syntax(&self, what: &str) -> Failure {
        Failure::Syntax(format!("{what} at byte {}", self.offset()))
    }

    /// The next byte that is not whitespace, not consumed; `None` at the end.
    fn peek(&mut self) -> Result<Option<u8>, Failure> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Consume `byte`, after whitespace.
    fn expect(&mut self, byte: u8) -> Result<(), Failure> {
        if self.peek()? == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(&format!("expected `{}`", byte as char)))
        }
    }

    /// The text of the next JSON value (after whitespace), consumed; reads as much as it
    /// needs. Only its end is found here: whether it is valid is for serde to say.
    fn value(&mut self) -> Result<&[u8], Failure> {
        self.peek()?;
        let (mut at, mut depth, mut in_string) = (0usize, 0usize, false);
        let end = 'scan: loop {
            let bytes = &self.buf[self.pos..];
            while at < bytes.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &bytes[at..]) {
                        None => at = bytes.len(),
                        Some(i) if bytes[at + i] == b'\\' => {
                            if at + i + 1 >= bytes.len() {
                                at += i; // the escaped byte is still to come
                                break;
                            }
                            at += i + 2;
                        }
                        Some(i) => {
                            at += i + 1;
                            in_string = false;
                            if depth == 0 {
                                break 'scan at;
                            }
                        }
                    }
                    continue;
                }
                match bytes[at] {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => break 'scan at,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            break 'scan at + 1;
                        }
                    }
                    b',' | b':' | b' ' | b'\n' | b'\r' | b'\t' if depth == 0 => break 'scan at,
                    _ => {}
                }
                at += 1;
            }
            if !self.more()? {
                // A number or literal may end with the payload; anything else is cut short.
                if depth == 0 && !in_string {
                    break at;
                }
                return Err(self.syntax("the payload ends inside a value starting"));
            }
        };
        let text = &self.buf[self.pos..self.pos + end];
        self.pos += end;
        Ok(text)
    }

    /// Parse the next value as a `T`.
    fn parse<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Failure> {
        let at = self.offset();
        let text = self.value()?;
        serde_json::from_slice(text)
            .map_err(|e| Failure::Syntax(format!("{e} in the value at byte {at}")))
    }

    /// After a member's value: `true` on `,`, `false` on `}` (both consumed).
    fn member_end(&mut self) -> Result<bool, Failure> {
        match self.peek()? {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b'}') => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.syntax("expected `,` or `}`")),
        }
    }

    /// Read one object's members into `out` as text: at `level` 0 the payload, at 1 the
    /// snapshot, whose channel (an object) goes to `channel` and is left empty in `out`.
    fn object(
        &mut self,
        level: u8,
        out: &mut Vec<u8>,
        channel: &mut Option<BTreeMap<String, Value>>,
    ) -> Result<(), Failure> {
        self.expect(b'{')?;
        out.push(b'{');
        if self.peek()? == Some(b'}') {
            self.pos += 1;
            out.push(b'}');
            return Ok(());
        }
        loop {
            let at = self.offset();
            let key_text = self.value()?;
            out.extend_from_slice(key_text);
            let key: String = serde_json::from_slice(key_text)
                .map_err(|e| Failure::Syntax(format!("{e} in the key at byte {at}")))?;
            self.expect(b':')?;
            out.push(b':');
            let next = self.peek()?;
            match (level, key.as_str(), next) {
                (0, "snapshot", Some(b'{')) => self.object(1, out, channel)?,
                (1, "channel", Some(b'{')) => {
                    if channel.is_some() {
                        return Err(self.syntax("duplicate field `channel`"));
                    }
                    *channel = Some(self.entries()?);
                    out.extend_from_slice(b"{}");
                }
                _ => {
                    let text = self.value()?;
                    out.extend_from_slice(text);
                }
            }
            if !self.member_end()? {
                out.push(b'}');
                return Ok(());
            }
            out.push(b',');
        }
    }

    /// Parse an object of key → value, one value at a time (a later key replaces an earlier
    /// one, as serde's map does).
    fn entries(&mut self) -> Result<BTreeMap<String, Value>, Failure> {
        let mut map = BTreeMap::new();
        self.expect(b'{')?;
        if self.peek()? == Some(b'}') {
            self.pos += 1;
            return Ok(map);
        }
        loop {
            let key: String = self.parse()?;
            self.expect(b':')?;
            let value: Value = self.parse()?;
            map.insert(key, value);
            if !self.member_end()? {
                return Ok(map);
            }
        }
    }

    /// Parse the whole payload: a checkpoint, its channel parsed value by value. What follows
    /// it must be whitespace. Stops at the first error, with the rest unread.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, Failure> {
        let mut rest = Vec::new();
        let mut channel = None;
        self.object(0, &mut rest, &mut channel)?;
        if self.peek()?.is_some() {
            return Err(self.syntax("trailing characters"));
        }
        let mut ckpt: Checkpoint =
            serde_json::from_slice(&rest).map_err(|e| Failure::Syntax(e.to_string()))?;
        if let Some(values) = channel {
            ckpt.snapshot.channel = ChannelContent::Values(values);
        }
        Ok(ckpt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A checkpoint whose channel is `channel`, as payload text.
    fn payload(channel: &Value) -> String {
        let mut ckpt = crate::checkpoint::file::tests::sample();
        ckpt.snapshot.results = [("a".to_string(), json!({"channel": {"not": "this one"}}))].into();
        ckpt.feedback = vec![json!({"id": "f"})];
        let text = serde_json::to_string(&ckpt).unwrap();
        text.replace(r#""channel":{}"#, &format!(r#""channel":{channel}"#))
    }

    fn read(text: &str) -> Result<Checkpoint, String> {
        let (start, rest) = text.as_bytes().split_at(text.len().min(5));
        Window::new(start.chain(rest))
            .checkpoint()
            .map_err(|e| match e {
                Failure::Io(e) => e.to_string(),
                Failure::Syntax(e) => e,
            })
    }

    #[test]
    fn reads_what_serde_reads_across_chunks() {
        // Values straddle the window's reads at every kind of byte: escapes, quotes, brackets.
        let escapes = "\\\"}{][,:".repeat(300_000);
        let mut channel = serde_json::Map::new();
        channel.insert("esc\"aped\\key ü".into(), json!(escapes));
        for i in 0..3_000 {
            channel.insert(
                format!("k{i}"),
                json!({"i": i, "f": 1.5e-7 * i as f64, "s": "x".repeat(i % 700), "n": [[[null, true, false]]]}),
            );
        }
        channel.insert("last".into(), json!(-12.5e3));
        let text = payload(&Value::Object(channel));
        assert!(text.len() > 3 * CHUNK);
        let expected: Checkpoint = serde_json::from_str(&text).unwrap();
        let got = read(&text).unwrap();
        assert_eq!(got, expected);
        assert!(matches!(got.snapshot.channel, ChannelContent::Values(ref v) if v.len() == 3_002));
        assert_eq!(got.snapshot.results["a"]["channel"]["not"], "this one");
    }

    #[test]
    fn accepts_and_refuses_what_serde_does() {
        let good = payload(&json!({"a": 1, "b": {"c": [1, "x"]}}));
        let cases = [
            good.clone(),
            good.replace(r#""a":1"#, r#""a" : 1 "#),
            good.replace(r#""a":1"#, r#""a":1 2"#),
            good.replace(r#""a":1"#, r#""a":tru"#),
            good.replace(r#""a":1"#, r#""a":01"#),
            good.replace(r#""a":1"#, r#""a"1"#),
            good.replace(r#""a":1"#, r#"1:1"#),
            good.replace(r#""a":1,"#, r#""a":1,,"#),
            good.replace(r#""a":1"#, r#""a":[}"#),
            good.replace(r#""a":1"#, r#""a":"x"#),
            good.replace(r#""c":[1,"x"]"#, r#""c":[1,"x"}"#),
            good.replace(r#""a":1"#, r#""a":"\q""#),
            good.replace(r#""a":1"#, "\"a\":\"\u{1}\""),
            good.replace(r#""channel":{"#, r#""channel":[{"#),
            good.replace(r#""channel":{"#, r#""channel":{"a":2},"channel":{"#),
            format!("{good} x"),
            format!("{good} \n"),
            good[..good.len() - 1].to_string(),
            good.replace(r#""run_id":"r1""#, r#""run_id":5"#),
            String::new(),
        ];
        for text in cases {
            let serde = serde_json::from_str::<Checkpoint>(&text);
            let ours = read(&text);
            assert_eq!(ours.is_ok(), serde.is_ok(), "{text:.300}: {ours:?}");
            if let (Ok(ours), Ok(serde)) = (ours, serde) {
                assert_eq!(ours, serde);
            }
        }
    }
}
