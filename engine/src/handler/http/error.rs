//! Why an HTTP request failed, in words: a refused connection, a host name that does not
//! resolve, a TLS failure, a timeout or a reset each say so, instead of reqwest's "error
//! sending request for url (…)". Shared by `Http` tasks and webhook notifiers.

use std::error::Error as StdError;
use std::io;

/// What went wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing listens at the address (connection refused).
    Refused,
    /// The host name does not resolve (DNS).
    Dns,
    /// The TLS handshake failed (an untrusted certificate, a server that does not speak TLS).
    Tls,
    /// No answer in time.
    Timeout,
    /// The server reset or closed the connection.
    Reset,
    /// The server's answer could not be read.
    Body,
    /// Anything else.
    Other,
}

/// The cause of `e` and a sentence for it (with the innermost error's own words).
pub fn describe(e: &reqwest::Error) -> (Cause, String) {
    let chain = chain(e);
    let innermost = chain.last().cloned().unwrap_or_else(|| e.to_string());
    let text = chain.join(": ").to_ascii_lowercase();
    let io_kind = io_kind(e);
    let host = e
        .url()
        .map(|u| match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => u.to_string(),
        })
        .unwrap_or_default();
    let cause = classify(e.is_timeout(), io_kind, &text);
    let sentence = match cause {
        Cause::Refused => format!("connection refused: nothing listens at {host}"),
        Cause::Dns => {
            let name = e.url().and_then(|u| u.host_str()).unwrap_or("the host");
            format!("DNS: the host name '{name}' does not resolve ({innermost})")
        }
        Cause::Tls => format!("TLS handshake with {host} failed: {innermost}"),
        Cause::Timeout => format!("timed out waiting for {host}"),
        Cause::Reset => format!("connection reset: {host} closed the connection ({innermost})"),
        Cause::Body => format!("the answer could not be read: {innermost}"),
        Cause::Other => innermost,
    };
    (cause, sentence)
}

/// The cause from the error's facts; pure, for tests.
fn classify(timeout: bool, io_kind: Option<io::ErrorKind>, text: &str) -> Cause {
    use io::ErrorKind as K;
    match io_kind {
        Some(K::ConnectionRefused) => return Cause::Refused,
        Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof) => {
            return Cause::Reset;
        }
        Some(K::TimedOut) => return Cause::Timeout,
        _ => {}
    }
    if timeout {
        Cause::Timeout
    } else if text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
        || text.contains("no address associated")
    {
        Cause::Dns
    } else if text.contains("tls")
        || text.contains("certificate")
        || text.contains("handshake")
        || text.contains("scheme is not http")
    {
        Cause::Tls
    } else if text.contains("connection refused") {
        Cause::Refused
    } else if text.contains("connection reset")
        || text.contains("connection closed")
        || text.contains("incomplete message")
    {
        Cause::Reset
    } else if text.contains("error decoding") || text.contains("error reading") {
        Cause::Body
    } else {
        Cause::Other
    }
}

/// The messages of the error and its sources, outermost first, without repeats.
fn chain(e: &reqwest::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !out.iter().any(|o| o == &text) {
            out.push(text);
        }
        cur = err.source();
    }
    out
}

/// The kind of the first I/O error in the chain, if any.
fn io_kind(e: &reqwest::Error) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Arc;
    use std::time::Duration;

    async fn fail(client: &reqwest::Client, url: &str) -> (Cause, String) {
        let e = client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect_err("the request fails");
        describe(&e)
    }

    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().map(|a| a.port()).unwrap_or(9);
        drop(l);
        port
    }

    /// A server that accepts one connection, reads the request, and hangs up at once.
    fn hang_up_server() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().map(|a| a.port()).unwrap_or(9);
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.flush();
            }
        });
        port
    }

    struct NoDns;
    impl reqwest::dns::Resolve for NoDns {
        fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
            Box::pin(async {
                Err::<reqwest::dns::Addrs, _>(Box::new(io::Error::other(
                    "failed to lookup address information: Name or service not known",
                )) as Box<dyn StdError + Send + Sync>)
            })
        }
    }

    #[tokio::test]
    async fn each_cause_is_named() {
        let client = reqwest::Client::new();
        let (c, s) = fail(&client, &format!("http://127.0.0.1:{}/", closed_port())).await;
        assert_eq!(c, Cause::Refused, "{s}");
        assert!(s.contains("connection refused"), "{s}");

        let (c, s) = fail(&client, &format!("http://127.0.0.1:{}/", hang_up_server())).await;
        assert_eq!(c, Cause::Reset, "{s}");
        assert!(s.contains("closed the connection"), "{s}");

        // https to a closed port: refused before any TLS (tests/https.rs covers handshakes).
        let (c, s) = fail(&client, &format!("https://127.0.0.1:{}/", closed_port())).await;
        assert_eq!(c, Cause::Refused, "{s}");

        // A resolver that fails as an unknown host does (no query leaves the machine).
        let no_dns = reqwest::Client::builder()
            .dns_resolver(Arc::new(NoDns))
            .build()
            .expect("client");
        let (c, s) = fail(&no_dns, "http://no-such-host.invalid/").await;
        assert_eq!(c, Cause::Dns, "{s}");
        assert!(s.contains("'no-such-host.invalid' does not resolve"), "{s}");

        // A server that never answers: the timeout says so.
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr: SocketAddr = l.local_addr().expect("addr");
        let e = client
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .expect_err("times out");
        assert_eq!(describe(&e).0, Cause::Timeout);
        drop(l);
    }

    #[test]
    fn classification_reads_io_kinds_first() {
        assert_eq!(
            classify(false, Some(io::ErrorKind::ConnectionRefused), ""),
            Cause::Refused
        );
        assert_eq!(
            classify(false, Some(io::ErrorKind::ConnectionReset), "dns error"),
            Cause::Reset
        );
        assert_eq!(classify(false, None, "dns error: x"), Cause::Dns);
        assert_eq!(classify(true, None, "whatever"), Cause::Timeout);
        assert_eq!(classify(false, None, "something else"), Cause::Other);
    }
}
