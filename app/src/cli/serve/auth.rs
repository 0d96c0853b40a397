//! The bearer token of `graflow serve`: checked in constant time on every /api, /ui and
//! /metrics request. The web form also takes it from a `graflow_token` cookie, set by
//! visiting any /ui page with `?token=…` (usually `/ui/?token=…`). POSTs from another
//! site's page are refused whatever the token (their `Origin` is not this server).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::html;
use super::routes::ApiError;

/// Name of the web form's cookie.
pub const COOKIE: &str = "graflow_token";

/// A configured token, kept as its SHA-256 so comparisons take the same time whatever the
/// length or content of the guess.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Token {
    /// The token `secret`.
    pub fn new(secret: &str) -> Self {
        Token {
            digest: digest(secret),
        }
    }

    /// Whether `guess` is the token (constant time).
    pub fn matches(&self, guess: &str) -> bool {
        bool::from(self.digest.ct_eq(&digest(guess)))
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
}

/// Cookie values are stored percent-encoded (a token may hold `;` or spaces).
fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn decode(v: &str) -> String {
    form_urlencoded::parse(format!("v={v}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The `token` query parameter.
pub fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The host of an `Origin` header value (`http://host:port` → `host:port`).
fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// A browser POST from a page of another site (its `Origin` names another host than ours).
fn cross_site(req: &Request) -> bool {
    if req.method() != Method::POST {
        return false;
    }
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin == "null" || !origin_host(origin).eq_ignore_ascii_case(host)
}

/// Middleware of the protected routes: refuses cross-site POSTs, and requests without the
/// token when one is configured. A valid `?token=` on a /ui page sets the cookie.
pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let ui = req.uri().path().starts_with("/ui");
    if cross_site(&req) {
        let detail = "this POST comes from a page of another site (Origin header)";
        return if ui {
            html::error_page(StatusCode::FORBIDDEN, "Forbidden", detail)
        } else {
            ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused", detail)
                .into_response()
        };
    }
    let Some(token) = &state.token else {
        return next.run(req).await;
    };
    let headers = req.headers();
    let from_query = if ui {
        query_token(req.uri().query())
    } else {
        None
    };
    let ok_header = bearer(headers).is_some_and(|t| token.matches(t));
    let ok_cookie = ui && cookie(headers, COOKIE).is_some_and(|t| token.matches(&t));
    let ok_query = from_query.as_deref().is_some_and(|t| token.matches(t));
    if !(ok_header || ok_cookie || ok_query) {
        let given = bearer(headers).is_some() || from_query.is_some();
        let detail = if given {
            "the token is wrong"
        } else if ui {
            "this server needs its token: open /ui/?token=<token> once (it sets a cookie), or send Authorization: Bearer <token>"
        } else {
            "send Authorization: Bearer <token>"
        };
        let mut resp = if ui {
            html::error_page(StatusCode::UNAUTHORIZED, "Token needed", detail)
        } else {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response()
        };
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"graflow\""),
        );
        return resp;
    }
    let mut resp = next.run(req).await;
    if let (true, Some(t)) = (ok_query, from_query) {
        let value = format!(
            "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
            encode(&t)
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        let t = Token::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret "));
        assert!(!t.matches(""));
    }

    #[test]
    fn credentials_are_read_from_headers_and_queries() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; graflow_token=x%3By+z; b=2"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("x;y z"));
        assert_eq!(decode(&encode("a;b c=d")), "a;b c=d");
        assert_eq!(query_token(Some("x=1&token=a%20b")), Some("a b".into()));
        assert_eq!(query_token(Some("x=1")), None);
        assert_eq!(origin_host("http://127.0.0.1:8000"), "127.0.0.1:8000");
    }
}
