//! HTTP clients for `Http` tasks and webhooks: TLS by rustls (no OpenSSL), trusting the
//! platform's root certificates — `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured — plus, when
//! given, the certificates of a PEM file (`ca_file`), for private certificate authorities.

use std::path::Path;

/// A client trusting the platform's roots and those of `ca_file`.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file '{}': {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file '{}': not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ca_file '{}': holds no PEM certificate",
                path.display()
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
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
