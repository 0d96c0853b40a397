//! A Server-Sent Events client over a real HTTP client (reqwest): connect with headers, read
//! messages one at a time with a deadline, see the end of the stream.

use std::time::Duration;

/// One SSE message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `id:`, when given.
    pub id: Option<String>,
    /// `event:` (`message` when not given).
    pub event: String,
    /// `data:` lines, joined with `\n`.
    pub data: String,
}

impl Message {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("message data is not JSON ({e}): {}", self.data))
    }
}

/// An open event stream.
pub struct Stream {
    resp: reqwest::Response,
    buf: String,
    ended: bool,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
}

/// GET `url` with `headers`; the answer's status and headers are in, its body not yet read.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    tokio::time::timeout(Duration::from_secs(20), req.send())
        .await
        .unwrap_or_else(|_| panic!("no answer from {url} within 20 s"))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

impl Stream {
    /// Open the stream at `url`; panics unless it answers 200 `text/event-stream`.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Stream {
        let resp = get(url, headers).await;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if status != 200 || !ct.starts_with("text/event-stream") {
            let body = resp.text().await.unwrap_or_default();
            panic!("{url}: {status} {ct}: {body}");
        }
        Stream {
            resp,
            buf: String::new(),
            ended: false,
            comments: 0,
        }
    }

    /// The next message; `None` when the server ended the stream. Panics when none comes
    /// within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Message> {
        tokio::time::timeout(within, self.next_inner())
            .await
            .unwrap_or_else(|_| panic!("no event within {within:?}"))
    }

    async fn next_inner(&mut self) -> Option<Message> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf[..end].to_string();
                self.buf.drain(..end + 2);
                if let Some(m) = self.parse(&block) {
                    return Some(m);
                }
            }
            if self.ended {
                return None;
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) => self.ended = true,
                Err(e) => panic!("reading the stream: {e}"),
            }
        }
    }

    fn parse(&mut self, block: &str) -> Option<Message> {
        let mut id = None;
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_string()),
                "event" => event = Some(value.to_string()),
                "data" => data.push(value),
                _ => {}
            }
        }
        if data.is_empty() && event.is_none() {
            return None;
        }
        Some(Message {
            id,
            event: event.unwrap_or_else(|| "message".into()),
            data: data.join("\n"),
        })
    }
}
