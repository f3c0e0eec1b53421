//! HTTP as data: a request the flow describes, a response a parser reads, and
//! the [`Transport`] that carries one to the other.
//!
//! [`HttpTransport`] is the production transport: one pooled keep-alive
//! reqwest client, rustls with the ring provider and the Mozilla root store
//! (certificates always verified), a connect timeout, a cap on response size,
//! and a **total** timeout over the whole exchange, last body byte included.
//! reqwest's blocking client restarts its timeout on every read of the body,
//! so a peer that dribbles a byte at a time could hold a call for as long as
//! it likes; here the calling thread drives reqwest's async client on a
//! small runtime of the transport's own, under one `tokio::time::timeout`.
//! Tests and hosts may inject any other [`Transport`].

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

use crate::config::ClientCertConfig;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The largest response body read from the gateway; the documented ones are
/// a few hundred bytes.
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// The longest a TCP (and TLS) connection may take to open.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP method the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// `GET`
    #[default]
    Get,
    /// `POST`
    Post,
}

/// A request, described before it is sent.
///
/// The URL may carry an access_token in its query: never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full URL, query included.
    pub url: Url,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
    /// The body's `Content-Type`, if it has one.
    pub content_type: Option<&'static str>,
    /// Further headers (API v3's `Authorization`, `Accept`).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.url.path())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body bytes (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a request and returns the response, or a [`Error::Network`].
///
/// A transport returns every HTTP status as a response; judging the status
/// is the parser's job.
pub trait Transport: Send + Sync {
    /// Sends `request` and reads the whole response.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse>;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
        (**self).send(request)
    }
}

/// The production transport: a pooled, keep-alive HTTPS client.
///
/// Calls block the calling thread; they must not be made from a thread that
/// runs an async runtime (they fail with [`Error::InvalidArgument`] there:
/// use the runtime's `spawn_blocking`).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    runtime: Arc<OwnRuntime>,
    timeout: Duration,
}

/// The transport's runtime: one worker thread for connection upkeep; calls
/// run on the caller's thread through `block_on`.
#[derive(Debug)]
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        // Never block in drop: a host may drop a client on an async thread.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl HttpTransport {
    /// A transport whose every exchange, connect to last body byte, ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<HttpTransport> {
        HttpTransport::with_tls(timeout, tls_config()?)
    }
}

/// rustls with ring and the Mozilla roots, without touching the process-wide
/// default provider (the host may have chosen its own).
pub(crate) fn tls_config() -> Result<rustls::ClientConfig> {
    Ok(tls_builder()?.with_no_client_auth())
}

fn tls_builder(
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("api_base", format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots))
}

/// The merchant's certificate chain and key from the configuration, read and
/// parsed once.
fn client_identity(
    cert: &ClientCertConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let bad = |reason: String| Error::config("client_cert", reason);
    if let Some(path) = &cert.pkcs12_file {
        let data = read_binary_file(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let password = cert
            .pkcs12_password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        return pkcs12_identity(&data, password).map_err(bad);
    }
    let read = |path: &std::path::Path| {
        crate::config::read_key_file(path)
            .map(String::into_bytes)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
    };
    let (cert_pem, key_pem): (Vec<u8>, Vec<u8>) = match (&cert.pem, &cert.cert_pem_file, &cert.key_pem_file) {
        (Some(inline), None, None) => (inline.expose().as_bytes().to_vec(), inline.expose().as_bytes().to_vec()),
        (None, Some(cert_file), None) => {
            let both = read(cert_file)?;
            (both.clone(), both)
        }
        (None, Some(cert_file), Some(key_file)) => (read(cert_file)?, read(key_file)?),
        _ => {
            return Err(bad(
                "give either pem, or cert_pem_file (with key_pem_file when the key is apart), or pkcs12_file with pkcs12_password".into(),
            ))
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("the certificate PEM does not parse ({e})")))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE block in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad(format!("no usable PRIVATE KEY block in the PEM ({e})")))?;
    Ok((chain, key))
}

/// A PKCS#12 file of at most [`crate::config::MAX_KEY_FILE_BYTES`].
fn read_binary_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(crate::config::MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > crate::config::MAX_KEY_FILE_BYTES {
        return Err(std::io::Error::other(
            "larger than 1 MiB: not a certificate file",
        ));
    }
    Ok(data)
}

/// The first key and its certificate chain of a PKCS#12 file (WeChat's
/// `apiclient_cert.p12` uses the legacy RC2/3DES encryption; AES works too).
fn pkcs12_identity(
    data: &[u8],
    password: &str,
) -> std::result::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        data,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| format!("the PKCS#12 file does not open with this password ({e})"))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| "the PKCS#12 file holds no private key".to_owned())?;
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err("the PKCS#12 file holds no certificate for its key".into());
    }
    let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
    Ok((certs, key))
}

impl HttpTransport {
    /// Like [`HttpTransport::new`], presenting the merchant's client
    /// certificate (mutual TLS, for API v2 refunds). A certificate or key that
    /// does not parse is a configuration error here, never later.
    pub fn with_client_cert(timeout: Duration, cert: &ClientCertConfig) -> Result<HttpTransport> {
        let (chain, key) = client_identity(cert)?;
        let tls = tls_builder()?
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                Error::config(
                    "client_cert",
                    format!("the certificate and key do not fit ({e})"),
                )
            })?;
        HttpTransport::with_tls(timeout, tls)
    }

    fn with_tls(timeout: Duration, tls: rustls::ClientConfig) -> Result<HttpTransport> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wxpay-http")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::config("timeout_ms", format!("cannot start the HTTP runtime: {e}"))
            })?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("libwxpay/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| {
                Error::config(
                    "timeout_ms",
                    format!("cannot build the HTTP client: {}", e.without_url()),
                )
            })?;
        Ok(HttpTransport {
            client,
            runtime: Arc::new(OwnRuntime(Some(runtime))),
            timeout,
        })
    }

    /// Sends `request` and reads the whole answer (at most
    /// [`MAX_RESPONSE_BYTES`]).
    async fn exchange(
        &self,
        client: reqwest::Client,
        request: &HttpRequest,
    ) -> Result<HttpResponse> {
        let mut builder = match request.method {
            Method::Get => client.get(request.url.clone()),
            Method::Post => {
                let b = client.post(request.url.clone()).body(request.body.clone());
                match request.content_type {
                    Some(ct) => b.header(reqwest::header::CONTENT_TYPE, ct),
                    None => b,
                }
            }
        };
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = builder.send().await.map_err(network_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network_error)? {
            if (body.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
                return Err(Error::MalformedResponse(format!(
                    "response body larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        // The connection goes back to the pool from the runtime's worker once
        // the body is done; give it that moment, so this thread's next request
        // finds it idle instead of opening another.
        drop(response);
        tokio::task::yield_now().await;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidArgument(
                "libwxpay's calls block: make them from a plain thread (e.g. spawn_blocking), not on an async runtime".into(),
            ));
        }
        let runtime = self
            .runtime
            .0
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("the HTTP runtime is shut down".into()))?;
        let client = self.client.clone();
        runtime.block_on(async {
            match tokio::time::timeout(self.timeout, self.exchange(client, request)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Network {
                    timeout: true,
                    message: format!(
                        "timed out: no complete answer within {} ms",
                        self.timeout.as_millis()
                    ),
                }),
            }
        })
    }
}

/// A reqwest error as a network error, without the URL (it carries the token).
fn network_error(err: reqwest::Error) -> Error {
    let timeout = err.is_timeout();
    let what = if timeout {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut message = what.to_owned();
    let mut source = std::error::Error::source(&err);
    // The chain names the cause (refused, reset, DNS) but never the URL.
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Network { timeout, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn cert(json: serde_json::Value) -> ClientCertConfig {
        serde_json::from_value(json).expect("a client_cert config")
    }

    #[test]
    fn client_certificates_load_from_pem_and_pkcs12() {
        let t = Duration::from_secs(1);
        let ok = [
            serde_json::json!({"cert_pem_file": fixture("apiclient_cert.pem"), "key_pem_file": fixture("apiclient_key.pem")}),
            serde_json::json!({"pkcs12_file": fixture("apiclient_cert.p12"), "pkcs12_password": "10000100"}),
            serde_json::json!({"pkcs12_file": fixture("apiclient_cert_aes.p12"), "pkcs12_password": "10000100"}),
            serde_json::json!({"pem": format!(
                "{}{}",
                std::fs::read_to_string(fixture("apiclient_cert.pem")).expect("pem"),
                std::fs::read_to_string(fixture("apiclient_key.pem")).expect("pem")
            )}),
        ];
        for config in ok {
            HttpTransport::with_client_cert(t, &cert(config.clone()))
                .unwrap_or_else(|e| panic!("{config}: {e}"));
        }
    }

    #[test]
    fn bad_client_certificates_are_config_errors() {
        let t = Duration::from_secs(1);
        let bad = [
            serde_json::json!({"pkcs12_file": fixture("apiclient_cert.p12"), "pkcs12_password": "wrong"}),
            serde_json::json!({"pkcs12_file": fixture("missing.p12")}),
            serde_json::json!({"cert_pem_file": fixture("apiclient_cert.pem")}),
            serde_json::json!({"cert_pem_file": fixture("apiclient_key.pem"), "key_pem_file": fixture("apiclient_key.pem")}),
            serde_json::json!({"pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"}),
            serde_json::json!({}),
        ];
        for config in bad {
            let err =
                HttpTransport::with_client_cert(t, &cert(config.clone())).expect_err("refused");
            assert!(
                matches!(&err, Error::InvalidConfig { field, .. } if field == "client_cert"),
                "{config}: {err}"
            );
            assert!(!err.to_string().contains("10000100"), "{err}");
        }
    }
}
