//! Which `Host` a request may name (against DNS rebinding: a page of any site whose name
//! resolves to this machine would otherwise reach the loopback server, token or not). Allowed:
//! the loopback names (`localhost`, `*.localhost`, `127.x.x.x`, `[::1]`) and the bind address
//! and name, each with the port served; when bound to every interface (`0.0.0.0`, `::`), any
//! IP literal too; plus the names of `--allow-host`. Anything else gets 421.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::routes::ApiError;

/// The hosts a request may name.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Names allowed besides IP literals and loopback names, lower case.
    names: Vec<String>,
    /// The port served.
    port: u16,
    /// The IP served (`None` when every interface is served: any IP literal is fine).
    ip: Option<IpAddr>,
}

impl AllowedHosts {
    /// Hosts for a server bound at `local`, asked for as `addr` (`host:port`), plus `extra`.
    pub fn new(local: SocketAddr, addr: &str, extra: &[String]) -> Self {
        let mut names: Vec<String> = extra.iter().map(|n| n.to_ascii_lowercase()).collect();
        if let Some((host, _)) = addr.rsplit_once(':') {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.parse::<IpAddr>().is_err() && !host.is_empty() {
                names.push(host.to_ascii_lowercase());
            }
        }
        AllowedHosts {
            names,
            port: local.port(),
            ip: (!local.ip().is_unspecified()).then_some(local.ip()),
        }
    }

    /// Whether a `Host` header value names this server.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if port.is_some_and(|p| p != self.port) {
            return false;
        }
        if port.is_none() && self.port != 80 {
            return false;
        }
        let name = name.to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip.is_loopback() || self.ip.is_none_or(|served| served == ip);
        }
        self.names.iter().any(|n| n.trim_end_matches('.') == name)
    }
}

/// `name` and `port` of a Host value (`[::1]:8000`, `localhost`, `a.b:80`); `None` when it
/// is not one.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let host = host.trim();
    if host.is_empty() {
        return None;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return match after {
            "" => Some((ip, None)),
            p => Some((ip, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => Some((name, Some(port.parse().ok()?))),
        Some(_) => None,
        None => Some((host, None)),
    }
}

/// Refuse requests whose `Host` does not name this server (421).
pub async fn check(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if state.hosts.allows(&h) => next.run(req).await,
        other => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host not served",
            format!(
                "this server answers requests for its own address and loopback names, not for \
                 host {:?}; start it with --allow-host NAME to serve another name",
                other.unwrap_or_default()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_server_allows_its_names_only() {
        let h = AllowedHosts::new("127.0.0.1:8000".parse().unwrap(), "127.0.0.1:8000", &[]);
        for ok in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST:8000",
            "[::1]:8000",
            "app.localhost:8000",
            "127.0.0.2:8000",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "127.0.0.1:8001",
            "localhost",
            "evil.example",
            "",
            "10.0.0.1:8000",
            "[::1",
            "a:b:c",
            "localhost.evil.example:8000",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn named_and_wildcard_binds() {
        let named = AllowedHosts::new(
            "127.0.0.1:9000".parse().unwrap(),
            "myhost:9000",
            &["alias.lan".into()],
        );
        assert!(named.allows("myhost:9000") && named.allows("alias.lan:9000"));
        assert!(!named.allows("other:9000"));
        let any = AllowedHosts::new("0.0.0.0:9000".parse().unwrap(), "0.0.0.0:9000", &[]);
        assert!(any.allows("192.168.1.5:9000") && any.allows("localhost:9000"));
        assert!(!any.allows("evil.example:9000"));
    }
}
