//! One child process: spawned in its own process group, its output streamed line by line into
//! the task's log while it runs, the whole group killed if the execution is dropped before the
//! child ends (timeout, cancellation).

use std::collections::VecDeque;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::context::TaskContext;
use crate::events::LogStream;

/// Longest line kept; the rest of a longer line is dropped and a marker added.
pub(in crate::handler) const MAX_LINE_BYTES: usize = 64 * 1024;
/// How many stderr lines a failure message quotes.
pub(in crate::handler) const STDERR_TAIL: usize = 5;
/// How long to keep reading after the child exited while something it started still holds
/// its stdout or stderr open.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// How a child ended and what its output left behind.
pub(super) struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The last non-empty stdout line.
    pub last_stdout: Option<String>,
    /// The last few stderr lines.
    pub stderr_tail: VecDeque<String>,
}

/// Kills a process group when dropped, unless disarmed.
struct GroupKill {
    pgid: Option<i32>,
}

impl GroupKill {
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.filter(|p| *p > 0) {
            // SAFETY: kill(2) with a negative pid signals the process group; it touches no
            // memory of ours.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Why a child produced no [`Finished`].
pub(super) enum ChildError {
    /// It could not be started.
    Spawn(io::Error),
    /// Waiting for it failed.
    Wait(io::Error),
}

/// Spawn `cmd` (stdin closed, stdout and stderr piped, in a new process group) and stream its
/// output into `ctx`'s log until it exits.
pub(super) async fn run(mut cmd: Command, ctx: &TaskContext) -> Result<Finished, ChildError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(ChildError::Spawn)?;
    let mut kill = GroupKill {
        pgid: child.id().map(|p| p as i32),
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut last_stdout: Option<String> = None;
    let mut stderr_tail = VecDeque::with_capacity(STDERR_TAIL + 1);
    let status = {
        let out = pump(stdout, |line| {
            if !line.trim().is_empty() {
                last_stdout = Some(line.clone());
            }
            ctx.log_stream(LogStream::Stdout, line);
        });
        let err = pump(stderr, |line| {
            if stderr_tail.len() == STDERR_TAIL {
                stderr_tail.pop_front();
            }
            stderr_tail.push_back(line.clone());
            ctx.log_stream(LogStream::Stderr, line);
        });
        let readers = futures::future::join(out, err);
        tokio::pin!(readers);
        let mut readers_done = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status.map_err(ChildError::Wait)?,
                _ = &mut readers, if !readers_done => readers_done = true,
            }
        };
        if !readers_done {
            // Normally the pipes reach their end at once; a background process the child left
            // behind may hold them open, so stop reading after a short grace.
            let _ = tokio::time::timeout(DRAIN_GRACE, &mut readers).await;
        }
        status
    };
    kill.disarm();
    Ok(Finished {
        status,
        last_stdout,
        stderr_tail,
    })
}

/// Read `source` to its end, calling `on_line` for each line.
async fn pump(source: Option<impl AsyncRead + Unpin>, mut on_line: impl FnMut(String)) {
    let Some(mut source) = source else {
        return;
    };
    let mut lines = LineBuffer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match source.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.push(&buf[..n], &mut on_line),
        }
    }
    lines.finish(&mut on_line);
}

/// Splits a byte stream into lines: at most [`MAX_LINE_BYTES`] per line (a cut line ends with a
/// marker), invalid UTF-8 replaced, a trailing `\r` removed.
#[derive(Default)]
pub(in crate::handler) struct LineBuffer {
    line: Vec<u8>,
    cut: bool,
}

impl LineBuffer {
    /// Feed bytes; complete lines go to `emit`.
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(String)) {
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            self.extend(&bytes[..pos]);
            self.flush(emit);
            bytes = &bytes[pos + 1..];
        }
        self.extend(bytes);
    }

    /// The stream ended: emit what is left.
    pub fn finish(&mut self, emit: &mut impl FnMut(String)) {
        if !self.line.is_empty() || self.cut {
            self.flush(emit);
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES - self.line.len();
        if bytes.len() > room {
            self.line.extend_from_slice(&bytes[..room]);
            self.cut = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn flush(&mut self, emit: &mut impl FnMut(String)) {
        if !self.cut && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let mut text = String::from_utf8_lossy(&self.line).into_owned();
        if self.cut {
            text.push_str(&format!(" …[line cut at {MAX_LINE_BYTES} bytes]"));
        }
        self.line.clear();
        self.cut = false;
        emit(text);
    }
}

/// "exited with status N" or "killed by signal N (NAME)"; `None` for success.
pub(super) fn describe_failure(status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return None;
    }
    if let Some(code) = status.code() {
        return Some(format!("exited with status {code}"));
    }
    if let Some(sig) = status.signal() {
        return Some(match signal_name(sig) {
            Some(name) => format!("killed by signal {sig} ({name})"),
            None => format!("killed by signal {sig}"),
        });
    }
    Some(format!("ended abnormally ({status})"))
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut b = LineBuffer::default();
        let mut emit = |l: String| out.push(l);
        for c in chunks {
            b.push(c, &mut emit);
        }
        b.finish(&mut emit);
        out
    }

    #[test]
    fn lines_split_across_chunks() {
        assert_eq!(split(&[b"a\nb", b"c\r\n\nd"]), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b"x\n"]), ["x"]);
        assert!(split(&[b""]).is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"ok \xff\xfe end\n"]), ["ok \u{fffd}\u{fffd} end"]);
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        let out = split(&[&long, b"\nnext\n"]);
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with(&"a".repeat(100)));
        assert!(
            out[0].ends_with("[line cut at 65536 bytes]"),
            "{}",
            &out[0][out[0].len() - 40..]
        );
        assert_eq!(
            out[0].len(),
            MAX_LINE_BYTES + " …[line cut at 65536 bytes]".len()
        );
        assert_eq!(out[1], "next");
    }

    #[test]
    fn statuses_are_described() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_failure(ExitStatus::from_raw(0)), None);
        assert_eq!(
            describe_failure(ExitStatus::from_raw(3 << 8)).unwrap(),
            "exited with status 3"
        );
        assert_eq!(
            describe_failure(ExitStatus::from_raw(libc::SIGKILL)).unwrap(),
            "killed by signal 9 (SIGKILL)"
        );
    }
}
