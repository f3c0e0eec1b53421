//! HTTP/1.1 connections to the gateway, opened over TCP (and TLS) and kept
//! for reuse.
//!
//! A [`ConnectionPool`] lends each exchange one connection and takes it back
//! before the exchange returns to its caller: a thread that makes call after
//! call finds its connection idle every time, so the pool never holds more
//! connections than there were exchanges in flight at once. (A pool that
//! takes connections back in the background, as general-purpose clients do,
//! opens a spare whenever the next request starts before the last one's
//! connection is back.)
//!
//! Everything here runs on the transport's own tokio runtime; the
//! connections' I/O tasks are spawned on it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::error::{Error, Result};

/// A request body: the whole of it, known before sending.
pub(crate) type Body = http_body_util::Full<Bytes>;

/// How long an idle connection is kept; servers close theirs after a minute
/// or so, and a connection closed under a request costs a retry.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// The most idle connections kept per origin.
const MAX_IDLE_PER_ORIGIN: usize = 64;

/// How long a connection may take to report itself ready for the next
/// request after its response ended (the I/O task notices at once; this only
/// bounds a stuck one, which is then dropped).
const READY_WAIT: Duration = Duration::from_secs(1);

/// Where a connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    tls: bool,
    host: Host<String>,
    port: u16,
}

impl Origin {
    /// The origin of an `http` or `https` URL.
    pub(crate) fn of(url: &Url) -> Result<Origin> {
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "cannot send a request over {other}: only http and https"
                )))
            }
        };
        let host = url
            .host()
            .ok_or_else(|| Error::InvalidArgument("the URL has no host".into()))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::InvalidArgument("the URL has no port".into()))?;
        Ok(Origin { tls, host, port })
    }

    /// The `Host` header: the host, and the port when it is not the scheme's
    /// default (IPv6 addresses in brackets).
    pub(crate) fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A connection lent to one exchange.
pub(crate) struct Connection {
    origin: Origin,
    sender: http1::SendRequest<Body>,
    /// Whether it was taken from the pool (it may have been closed by the
    /// server while idle) rather than opened for this exchange.
    pub(crate) reused: bool,
}

impl Connection {
    /// Sends `request`; the request comes back unsent when the connection
    /// turned out closed before any of it was written (safe to send again).
    pub(crate) async fn send(
        &mut self,
        request: hyper::Request<Body>,
    ) -> std::result::Result<hyper::Response<Incoming>, SendError> {
        match self.sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            Err(mut e) => match e.take_message() {
                Some(unsent) => Err(SendError::Unsent(Box::new(unsent), e.into_error())),
                None => Err(SendError::Failed(e.into_error())),
            },
        }
    }
}

/// Why [`Connection::send`] failed.
pub(crate) enum SendError {
    /// Nothing was written: the request may be sent on another connection.
    Unsent(Box<hyper::Request<Body>>, hyper::Error),
    /// The request may have reached the server.
    Failed(hyper::Error),
}

struct IdleConnection {
    origin: Origin,
    sender: http1::SendRequest<Body>,
    since: Instant,
}

/// Open connections, and the TLS settings new ones are made with.
pub(crate) struct ConnectionPool {
    tls: TlsConnector,
    connect_timeout: Duration,
    idle: Mutex<Vec<IdleConnection>>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle", &self.idle_count())
            .finish_non_exhaustive()
    }
}

impl ConnectionPool {
    /// An empty pool whose TLS connections use `tls`, and whose connections
    /// (TCP and TLS handshake) must open within `connect_timeout`.
    pub(crate) fn new(tls: rustls::ClientConfig, connect_timeout: Duration) -> ConnectionPool {
        ConnectionPool {
            tls: TlsConnector::from(Arc::new(tls)),
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The number of idle connections.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }

    /// The most recently used idle connection to `origin` that is still
    /// open, or a new one. Must run on the transport's runtime.
    pub(crate) async fn checkout(&self, origin: &Origin) -> Result<Connection> {
        if let Some(sender) = self.take_idle(origin) {
            return Ok(Connection {
                origin: origin.clone(),
                sender,
                reused: true,
            });
        }
        self.open(origin).await
    }

    /// A new connection to `origin`, never one from the pool.
    pub(crate) async fn open(&self, origin: &Origin) -> Result<Connection> {
        let sender = tokio::time::timeout(self.connect_timeout, self.connect(origin))
            .await
            .map_err(|_| Error::Network {
                timeout: true,
                message: format!(
                    "could not connect within {} ms",
                    self.connect_timeout.as_millis()
                ),
            })??;
        log::trace!("{}: opened a new connection", origin.host_header());
        Ok(Connection {
            origin: origin.clone(),
            sender,
            reused: false,
        })
    }

    /// Takes `connection` back once its response has been read to the end,
    /// when it can carry another request; otherwise (the server asked to
    /// close it, or closed it) drops it. Waits for the connection's I/O task
    /// to finish with the response (a moment), so the caller's next request
    /// finds it idle.
    pub(crate) async fn checkin(&self, mut connection: Connection) {
        match tokio::time::timeout(READY_WAIT, connection.sender.ready()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        idle.retain(|c| now.duration_since(c.since) < IDLE_TIMEOUT && !c.sender.is_closed());
        if idle
            .iter()
            .filter(|c| c.origin == connection.origin)
            .count()
            < MAX_IDLE_PER_ORIGIN
        {
            idle.push(IdleConnection {
                origin: connection.origin,
                sender: connection.sender,
                since: now,
            });
        }
    }

    fn take_idle(&self, origin: &Origin) -> Option<http1::SendRequest<Body>> {
        let mut idle = self.idle.lock().ok()?;
        let now = Instant::now();
        idle.retain(|c| now.duration_since(c.since) < IDLE_TIMEOUT && !c.sender.is_closed());
        let last = idle
            .iter()
            .rposition(|c| c.origin == *origin && c.sender.is_ready())?;
        Some(idle.remove(last).sender)
    }

    async fn connect(&self, origin: &Origin) -> Result<http1::SendRequest<Body>> {
        let tcp = match &origin.host {
            Host::Domain(name) => TcpStream::connect((name.as_str(), origin.port)).await,
            Host::Ipv4(ip) => TcpStream::connect(SocketAddr::from((*ip, origin.port))).await,
            Host::Ipv6(ip) => TcpStream::connect(SocketAddr::from((*ip, origin.port))).await,
        }
        .map_err(|e| network_error("could not connect", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| network_error("could not connect", &e))?;
        if origin.tls {
            let name = match &origin.host {
                Host::Domain(name) => ServerName::try_from(name.clone())
                    .map_err(|e| Error::InvalidArgument(format!("bad host name: {e}")))?,
                Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
                Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
            };
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| network_error("TLS handshake failed", &e))?;
            handshake(tls).await
        } else {
            handshake(tcp).await
        }
    }
}

/// Starts HTTP/1.1 on `io`, its I/O task spawned on the current runtime.
async fn handshake<T>(io: T) -> Result<http1::SendRequest<Body>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| network_error("HTTP handshake failed", &e))?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the pool drops
        // its sender; either is normal, and an exchange in flight sees the
        // error itself.
        let _ = connection.await;
    });
    Ok(sender)
}

/// A network error: `what` failed, and the causes (never a URL: none of the
/// errors here carries one).
pub(crate) fn network_error(what: &str, err: &dyn std::error::Error) -> Error {
    let mut message = format!("{what}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Network {
        timeout: false,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_host_headers() {
        let origin = |u: &str| Origin::of(&Url::parse(u).expect("url"));
        let o = origin("https://api.mch.weixin.qq.com/pay/unifiedorder?x=1").expect("https");
        assert!(o.tls);
        assert_eq!(o.port, 443);
        assert_eq!(o.host_header(), "api.mch.weixin.qq.com");
        let o = origin("http://127.0.0.1:8080/cgi-bin/token").expect("http");
        assert!(!o.tls);
        assert_eq!(o.host_header(), "127.0.0.1:8080");
        assert_eq!(
            origin("http://[::1]:9/").expect("v6").host_header(),
            "[::1]:9"
        );
        assert_eq!(
            origin("https://example.com:443/")
                .expect("default")
                .host_header(),
            "example.com"
        );
        assert!(matches!(
            origin("ftp://example.com/"),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(
            origin("https://example.com/a").ok(),
            origin("https://example.com:443/b").ok()
        );
        assert_ne!(
            origin("https://example.com/").ok(),
            origin("http://example.com:443/").ok()
        );
    }
}
