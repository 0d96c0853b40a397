//! HTTP clients for `Http` tasks and webhooks: TLS by rustls (no OpenSSL), trusting the
//! platform's root certificates — `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured — plus, when
//! given, the certificates of a PEM file (`ca_file`), for private certificate authorities.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// An HTTP client could not be set up.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The `ca_file` cannot be read.
    #[error("ca_file '{}': {source}", path.display())]
    CaFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The `ca_file` is not a PEM bundle, or holds no certificate.
    #[error("ca_file '{}': {reason}", path.display())]
    CaFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS set-up failed (for example, the platform's roots cannot be read).
    #[error("cannot set up the HTTP client: {0}")]
    Setup(reqwest::Error),
}

impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        e.to_string()
    }
}

/// A client trusting the platform's roots and those of `ca_file`.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(path) = ca_file {
        let invalid = |reason: String| ClientError::CaFileInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFileUnreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| invalid(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("holds no PEM certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(ClientError::Setup)
}

/// The default client (platform roots only); a client without TLS roots when the platform
/// store cannot be read at all, so plain HTTP still works and HTTPS fails with a message.
pub fn default_client() -> reqwest::Client {
    match http_client(None) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("{e}; HTTPS requests will fail");
            reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_native_certs(false)
                .build()
                .unwrap_or_default()
        }
    }
}
