//! HTTP as the protocol code sees it: a request the flow describes, a
//! response a parser reads, the [`Transport`] that carries one to the other,
//! and the production transport ([`HttpTransport`]) with its TLS set-up.

use std::sync::Arc;

use url::Url;

use crate::error::Result;

mod per_thread;
mod tls;
mod transport;

#[cfg(feature = "sandbox")]
pub(crate) use tls::tls_config;
pub use transport::HttpTransport;

/// The largest response body read from the gateway; the documented ones are
/// a few hundred bytes.
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;

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

/// Sends a request and returns the response, or a [`crate::Error::Network`].
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
