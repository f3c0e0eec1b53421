//! HTTP as the protocol code sees it: requests and responses as data, the
//! [`Transport`] trait that sends them, and the HTTPS transport with TLS.

mod per_thread;
mod transport;

#[cfg(feature = "sandbox")]
pub(crate) use transport::tls_config;
pub use transport::{
    HttpRequest, HttpResponse, HttpTransport, Method, Transport, MAX_RESPONSE_BYTES,
};
