//! [`HttpTransport`], the production transport: reqwest's HTTP/1.1 client
//! (keep-alive connections, no redirects), rustls with the ring provider and
//! the Mozilla root store (certificates always verified), the merchant's
//! client certificate when refunds need one, an optional proxy, a connect
//! timeout, a cap on response size, and a **total** timeout over the whole
//! exchange, last body byte included: a peer that dribbles a byte at a time
//! cannot hold a call past it.
//!
//! The calling thread drives its own exchanges on a current-thread tokio
//! runtime of its own (see `per_thread`): no other thread takes part in a
//! call. Tests and hosts may inject any other [`Transport`].

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::config::ClientCertConfig;
use crate::error::{Error, Result};
use crate::http::per_thread;
use crate::http::tls::{client_identity, mozilla_roots, tls_builder, tls_config};
use crate::http::{HttpRequest, HttpResponse, Method, Transport, MAX_RESPONSE_BYTES};

/// The longest a TCP (and TLS) connection may take to open.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The production transport: an HTTPS client that keeps its connections.
///
/// Clones share everything. Each thread that calls a transport gets its own
/// runtime and connections for it on its first call, and reuses them: calls
/// from `n` threads never hold more than `n` connections to a gateway (more
/// only to replace ones the server closed). Dropping the last clone closes
/// the connections of the thread that drops it at once, and those of other
/// threads on their next call (with any transport) or when they exit.
///
/// A request that a kept-alive connection lost before the answer's head came
/// (the server closed the connection just as the request went out) is sent
/// once more on a new connection, within the same total timeout: every
/// request the protocol makes is safe to repeat (GETs, and POSTs the gateway
/// de-duplicates by the merchant's own `out_trade_no` or `out_refund_no`).
///
/// Calls block the calling thread; they must not be made from a thread that
/// runs an async runtime (they fail with [`Error::InvalidArgument`] there:
/// use the runtime's `spawn_blocking`).
///
/// A transport created and used before `fork()` keeps working in the parent
/// and in every child: a child opens connections of its own and never uses,
/// closes or writes on the parent's. (As with any library, fork while no
/// other thread is inside a call.)
///
/// Proxies: the one given to [`HttpTransport::with_proxy`] (the
/// configuration's `proxy` key), else the standard environment variables as
/// reqwest reads them: `HTTPS_PROXY` (for `https://` gateways),
/// `HTTP_PROXY` (for plain `http://` ones, ignored when `REQUEST_METHOD` is
/// set, as in a CGI process), `ALL_PROXY`, and `NO_PROXY` (a comma-separated
/// list of hosts, domains and IP ranges to reach directly), lower-case
/// spellings included. The environment is read when a thread makes its first
/// call with the transport.
#[derive(Clone)]
pub struct HttpTransport {
    settings: Arc<Settings>,
}

/// What a transport's per-thread clients are made from.
pub(crate) struct Settings {
    /// rustls with ring, the roots, and the client certificate if any.
    pub(crate) tls: rustls::ClientConfig,
    /// The total timeout of one exchange.
    pub(crate) timeout: Duration,
    /// The configured proxy (`None`: the environment's).
    pub(crate) proxy: Option<reqwest::Proxy>,
}

impl Settings {
    /// How long a connection (TCP, and TLS) may take to open.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.timeout.min(MAX_CONNECT_TIMEOUT)
    }
}

impl Drop for Settings {
    fn drop(&mut self) {
        // The last handle is gone: this thread's connections close now.
        per_thread::prune_this_thread();
    }
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the proxy's URL: it may carry a password.
        f.debug_struct("HttpTransport")
            .field("timeout", &self.settings.timeout)
            .field("proxy", &self.settings.proxy.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport whose every exchange, connect to last body byte, ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<HttpTransport> {
        HttpTransport::with_tls(timeout, tls_config()?)
    }

    /// This transport sending every request through the proxy at `proxy`
    /// (`http://` or `https://`, with `user:password@` for basic
    /// authentication) instead of the environment's; hosts listed in
    /// `NO_PROXY` are still reached directly. `None` keeps the environment's
    /// proxy settings. `https://` gateways are reached through a `CONNECT`
    /// tunnel: TLS runs end to end, the proxy sees only the host and port.
    pub fn with_proxy(self, proxy: Option<&Url>) -> Result<HttpTransport> {
        let Some(url) = proxy else {
            return Ok(self);
        };
        // Neither reqwest's error nor ours shows the URL (it may hold a password).
        let proxy = reqwest::Proxy::all(url.as_str())
            .map_err(|e| Error::config("proxy", format!("unusable: {}", e.without_url())))?
            .no_proxy(reqwest::NoProxy::from_env());
        Ok(HttpTransport {
            settings: Arc::new(Settings {
                tls: self.settings.tls.clone(),
                timeout: self.settings.timeout,
                proxy: Some(proxy),
            }),
        })
    }
}

impl HttpTransport {
    /// Like [`HttpTransport::new`], presenting the merchant's client
    /// certificate (mutual TLS, for API v2 refunds). A certificate or key that
    /// does not parse is a configuration error here, never later.
    pub fn with_client_cert(timeout: Duration, cert: &ClientCertConfig) -> Result<HttpTransport> {
        HttpTransport::with_client_cert_and_roots(timeout, cert, mozilla_roots())
    }

    fn with_client_cert_and_roots(
        timeout: Duration,
        cert: &ClientCertConfig,
        roots: rustls::RootCertStore,
    ) -> Result<HttpTransport> {
        let (chain, key) = client_identity(cert)?;
        let tls = tls_builder(roots)?
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
        Ok(HttpTransport {
            settings: Arc::new(Settings {
                tls,
                timeout,
                proxy: None,
            }),
        })
    }
}

/// `request` as reqwest's request, for `client`.
fn outgoing(client: &reqwest::Client, request: &HttpRequest) -> Result<reqwest::Request> {
    if !matches!(request.url.scheme(), "http" | "https") {
        return Err(Error::InvalidArgument(format!(
            "cannot send a request over {}: only http and https",
            request.url.scheme()
        )));
    }
    let mut builder = match request.method {
        Method::Get => client.get(request.url.clone()),
        Method::Post => {
            let mut post = client.post(request.url.clone());
            if let Some(content_type) = request.content_type {
                post = post.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            post.body(request.body.clone())
        }
    };
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    // The builder's errors name the part at fault (a header), never the URL
    // once it is taken out.
    builder.build().map_err(|e| {
        Error::InvalidArgument(format!(
            "cannot build the HTTP request: {}",
            e.without_url()
        ))
    })
}

/// Sends `outgoing` with `client` and reads the whole answer (at most
/// [`MAX_RESPONSE_BYTES`]).
async fn exchange(
    client: reqwest::Client,
    outgoing: reqwest::Request,
    connect_timeout: Duration,
) -> Result<HttpResponse> {
    let again = outgoing.try_clone();
    let mut response = match (client.execute(outgoing).await, again) {
        (Ok(response), _) => response,
        (Err(e), Some(again)) if closed_under_request(&e) => {
            log::debug!("the server closed a kept-alive connection under a request: sending it again on a new one");
            client
                .execute(again)
                .await
                .map_err(|e| request_error(&e, connect_timeout))?
        }
        (Err(e), _) => return Err(request_error(&e, connect_timeout)),
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let too_large = || {
        Error::MalformedResponse(format!(
            "response body larger than {MAX_RESPONSE_BYTES} bytes"
        ))
    };
    let announced = response.content_length().unwrap_or(0);
    if announced > MAX_RESPONSE_BYTES {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(&e, connect_timeout))?
    {
        if (body.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Whether `e` says the connection was closed or reset under the request,
/// before the head of the answer came: a server closing a kept-alive
/// connection just as the request went out (a server closes between
/// requests, so it most likely did not take this one in).
fn closed_under_request(e: &reqwest::Error) -> bool {
    if e.is_connect() || e.is_timeout() || e.is_body() || e.is_decode() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            if matches!(io.kind(), BrokenPipe | ConnectionAborted | ConnectionReset) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// A failed exchange as a network error: what failed (connecting, the TLS
/// handshake, the exchange, reading the answer) and the causes. reqwest's
/// own text, which names the URL (and so the access_token), is left out.
fn request_error(e: &reqwest::Error, connect_timeout: Duration) -> Error {
    if e.is_connect() && e.is_timeout() {
        return Error::Network {
            timeout: true,
            message: format!(
                "could not connect within {} ms",
                connect_timeout.as_millis()
            ),
        };
    }
    let mut causes = Vec::new();
    let mut tls = false;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        tls |= is_tls_error(cause);
        causes.push(cause.to_string());
        source = cause.source();
    }
    let what = if tls {
        "TLS handshake failed"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    causes.dedup();
    let mut message = what.to_owned();
    for cause in causes {
        message.push_str(": ");
        message.push_str(&cause);
    }
    Error::Network {
        timeout: e.is_timeout(),
        message,
    }
}

/// Whether `e` is rustls's, bare or inside `io::Error`s (whose `source`
/// skips the error they wrap).
fn is_tls_error(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<rustls::Error>() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidArgument(
                "libwxpay's calls block: make them from a plain thread (e.g. spawn_blocking), not on an async runtime".into(),
            ));
        }
        // Scheme, host and path only: the query carries the access_token
        // (and, on a token fetch, the app secret).
        let method = match request.method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        let shown = format!(
            "{}://{}",
            request.url.scheme(),
            &request.url[url::Position::BeforeHost..url::Position::AfterPath]
        );
        let started = std::time::Instant::now();
        let (timeout, connect_timeout) = (self.settings.timeout, self.settings.connect_timeout());
        let result = per_thread::with_thread_client(&self.settings, |local| {
            let timed_out = || Error::Network {
                timeout: true,
                message: format!(
                    "timed out: no complete answer within {} ms",
                    timeout.as_millis()
                ),
            };
            local.run(timeout, timed_out, |client| {
                let outgoing = outgoing(client, request)?;
                Ok(exchange(client.clone(), outgoing, connect_timeout))
            })
        });
        let ms = started.elapsed().as_millis();
        match &result {
            Ok(response) => log::trace!(
                "{method} {shown}: HTTP {}, {} bytes in {ms} ms",
                response.status,
                response.body.len()
            ),
            Err(e) => log::debug!("{method} {shown}: failed after {ms} ms: {e}"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn cert(json: serde_json::Value) -> ClientCertConfig {
        serde_json::from_value(json).expect("a client_cert config")
    }

    /// A loopback HTTP/1.1 server answering `ok` to every request.
    struct ScriptedServer {
        /// `http://127.0.0.1:PORT`
        base: String,
        /// Connections accepted so far.
        accepted: Arc<AtomicUsize>,
        /// Connections the client closed so far.
        closed: Arc<AtomicUsize>,
        /// The request line of every request, in order.
        request_lines: Arc<Mutex<Vec<String>>>,
    }

    /// A [`ScriptedServer`] that, after `per_connection` answers on one
    /// connection, closes it (with `Connection: close` when `announce`,
    /// silently otherwise).
    fn scripted_server(per_connection: usize, announce: bool) -> ScriptedServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = ScriptedServer {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            accepted: Arc::default(),
            closed: Arc::default(),
            request_lines: Arc::default(),
        };
        let (accepted, closed, lines) = (
            Arc::clone(&server.accepted),
            Arc::clone(&server.closed),
            Arc::clone(&server.request_lines),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (closed, lines) = (Arc::clone(&closed), Arc::clone(&lines));
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut writer = stream;
                    for answered in 1..=per_connection {
                        let mut length = 0usize;
                        let mut first = true;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                closed.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            if first {
                                lines
                                    .lock()
                                    .expect("lines")
                                    .push(line.trim_end().to_owned());
                                first = false;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().expect("length");
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        std::io::Read::read_exact(&mut reader, &mut body).expect("body");
                        let close = if announce && answered == per_connection {
                            "Connection: close\r\n"
                        } else {
                            ""
                        };
                        let answer =
                            format!("HTTP/1.1 200 OK\r\n{close}Content-Length: 2\r\n\r\nok");
                        writer.write_all(answer.as_bytes()).expect("answer");
                    }
                    // Closed silently (or as announced) once the last answer is out.
                });
            }
        });
        server
    }

    fn post(transport: &HttpTransport, base: &str) -> Result<HttpResponse> {
        transport.send(&HttpRequest {
            method: Method::Post,
            url: Url::parse(&format!("{base}/pay/genprepay?access_token=T")).expect("url"),
            body: b"{}".to_vec(),
            content_type: Some("application/json"),
            headers: Vec::new(),
        })
    }

    #[test]
    fn one_thread_reuses_one_connection() {
        let server = scripted_server(usize::MAX, false);
        let transport = HttpTransport::new(Duration::from_secs(5)).expect("transport");
        for _ in 0..200 {
            let response = post(&transport, &server.base).expect("answer");
            assert_eq!(
                (response.status, response.body.as_slice()),
                (200, &b"ok"[..])
            );
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn closed_connections_are_replaced() {
        for announce in [true, false] {
            let server = scripted_server(3, announce);
            let transport = HttpTransport::new(Duration::from_secs(5)).expect("transport");
            for i in 0..12 {
                let response = post(&transport, &server.base)
                    .unwrap_or_else(|e| panic!("announce={announce}, call {i}: {e}"));
                assert_eq!(response.body, b"ok");
                if !announce {
                    // Let the silent close land while the connection is idle
                    // on some calls, and race the next request on others.
                    std::thread::sleep(Duration::from_millis(if i % 2 == 0 { 20 } else { 0 }));
                }
            }
            assert_eq!(
                server.accepted.load(Ordering::SeqCst),
                4,
                "announce={announce}"
            );
        }
    }

    /// Waits up to 5 s for `done`.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn each_thread_keeps_one_connection_and_closes_it_when_done() {
        let server = scripted_server(usize::MAX, false);
        let transport = HttpTransport::new(Duration::from_secs(5)).expect("transport");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        post(&transport, &server.base).expect("answer");
                    }
                });
            }
        });
        assert_eq!(server.accepted.load(Ordering::SeqCst), 4);
        // The threads have exited: their connections are closed.
        eventually("the threads' connections close", || {
            server.closed.load(Ordering::SeqCst) == 4
        });

        // This thread's connection closes when the last clone is dropped.
        let clone = transport.clone();
        post(&clone, &server.base).expect("answer");
        drop(transport);
        post(&clone, &server.base).expect("answer");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 5);
        drop(clone);
        eventually("this thread's connection closes", || {
            server.closed.load(Ordering::SeqCst) == 5
        });
    }

    #[test]
    fn a_stalled_answer_times_out_and_the_thread_goes_on() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", silent.local_addr().expect("addr"));
        let transport = HttpTransport::new(Duration::from_millis(300)).expect("transport");
        let started = std::time::Instant::now();
        let err = post(&transport, &base).expect_err("no answer");
        assert!(
            matches!(&err, Error::Network { timeout: true, message } if message.contains("300 ms")),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let server = scripted_server(usize::MAX, false);
        assert_eq!(post(&transport, &server.base).expect("answer").body, b"ok");
        drop(silent);
    }

    #[test]
    fn calls_from_an_async_runtime_are_refused() {
        let server = scripted_server(usize::MAX, false);
        let transport = HttpTransport::new(Duration::from_secs(5)).expect("transport");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = runtime
            .block_on(async { post(&transport, &server.base) })
            .expect_err("refused on an async thread");
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("spawn_blocking")),
            "{err:?}"
        );
        assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
        // Outside the runtime, the same thread may call.
        post(&transport, &server.base).expect("answer");
    }

    #[test]
    fn a_configured_proxy_carries_every_request() {
        let proxy = scripted_server(usize::MAX, false);
        let proxy_url = Url::parse(&proxy.base).expect("url");
        // Nothing listens at the gateway's address: only the proxy answers.
        let gateway = "http://127.0.0.1:9";
        let transport = HttpTransport::new(Duration::from_secs(5))
            .and_then(|t| t.with_proxy(Some(&proxy_url)))
            .expect("transport");
        for _ in 0..3 {
            let response = post(&transport, gateway).expect("answer through the proxy");
            assert_eq!(response.body, b"ok");
        }
        assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1);
        let lines = proxy.request_lines.lock().expect("lines").clone();
        assert_eq!(
            lines,
            vec!["POST http://127.0.0.1:9/pay/genprepay?access_token=T HTTP/1.1"; 3]
        );
        assert_eq!(
            format!("{transport:?}"),
            "HttpTransport { timeout: 5s, proxy: true, .. }"
        );
    }

    #[test]
    fn refused_connections_and_bad_schemes_are_typed_errors() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let transport = HttpTransport::new(Duration::from_secs(2)).expect("transport");
        let err = post(&transport, &format!("http://127.0.0.1:{port}")).expect_err("refused");
        assert!(
            matches!(&err, Error::Network { timeout: false, message } if message.starts_with("could not connect")),
            "{err:?}"
        );
        assert!(!err.to_string().contains("access_token"), "{err}");
        let err = post(&transport, "ftp://127.0.0.1:21").expect_err("ftp");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }

    /// A certificate authority, a server certificate for `localhost` and a
    /// merchant certificate (with its key, as one PEM), all issued by it.
    struct TestPki {
        roots: rustls::RootCertStore,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: PrivateKeyDer<'static>,
        client_pem: String,
    }

    fn test_pki() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
        let server_key = KeyPair::generate().expect("key");
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&server_key, &ca)
            .expect("server certificate");
        let client_key = KeyPair::generate().expect("key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("params");
        client
            .distinguished_name
            .push(DnType::CommonName, "10000100");
        let client = client
            .signed_by(&client_key, &ca)
            .expect("client certificate");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("CA root");
        TestPki {
            roots,
            server_chain: vec![server.der().clone()],
            server_key: PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
        }
    }

    /// A TLS server on loopback that demands a client certificate issued by
    /// the test CA, and answers each request with the number of
    /// certificates the client presented. Returns its port.
    fn mutual_tls_server(pki: &TestPki) -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(pki.roots.clone()),
            Arc::clone(&provider),
        )
        .build()
        .expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
            .expect("server config");
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).expect("server connection");
                    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                    loop {
                        let mut line = String::new();
                        // A failed handshake (no client certificate) ends here.
                        if tls.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let stream = tls.get_mut();
                    let presented = stream.conn.peer_certificates().map_or(0, <[_]>::len);
                    let body = format!("client certificates: {presented}");
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes());
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                });
            }
        });
        port
    }

    fn get(transport: &HttpTransport, url: &str) -> Result<HttpResponse> {
        transport.send(&HttpRequest {
            method: Method::Get,
            url: Url::parse(url).expect("url"),
            body: Vec::new(),
            content_type: None,
            headers: Vec::new(),
        })
    }

    #[test]
    fn mutual_tls_presents_the_merchant_certificate_and_verifies_the_server() {
        let pki = test_pki();
        let url = format!(
            "https://localhost:{}/secapi/pay/refund",
            mutual_tls_server(&pki)
        );
        let t = Duration::from_secs(5);
        let cert = cert(serde_json::json!({ "pem": pki.client_pem }));

        let transport =
            HttpTransport::with_client_cert_and_roots(t, &cert, pki.roots.clone()).expect("mTLS");
        let response = get(&transport, &url).expect("a mutual TLS exchange");
        assert_eq!(response.body, b"client certificates: 1");

        // The server refuses a client without the certificate.
        let anonymous = HttpTransport::with_tls(
            t,
            tls_builder(pki.roots.clone())
                .expect("tls")
                .with_no_client_auth(),
        )
        .expect("transport");
        let err = get(&anonymous, &url).expect_err("no client certificate");
        assert!(matches!(err, Error::Network { .. }), "{err:?}");

        // The production roots do not know the test CA: certificates are
        // always verified.
        let production = HttpTransport::with_client_cert(t, &cert).expect("transport");
        let err = get(&production, &url).expect_err("unknown issuer");
        assert!(
            matches!(&err, Error::Network { message, .. } if message.starts_with("TLS handshake failed") && message.contains("UnknownIssuer")),
            "{err:?}"
        );
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
                matches!(&err, Error::InvalidConfig { field, .. } if field.starts_with("client_cert")),
                "{config}: {err}"
            );
            assert!(!err.to_string().contains("10000100"), "{err}");
        }
    }
}
