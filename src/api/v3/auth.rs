//! API v3 authentication: the `WECHATPAY2-SHA256-RSA2048` Authorization of
//! a request, signed over the exact bytes sent, and the verification of every
//! signed answer and notification (serial, signature over the raw body,
//! timestamp within five minutes).

use serde_json::Value;
use url::Url;

use crate::api::v3::merchant::V3Merchant;
use crate::crypto::rsa::VerifyingKey;
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse, Method};

/// How far a signed timestamp may be from now, in seconds (exclusive).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The four `Wechatpay-*` headers of a signed answer or notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Wechatpay-Serial`: the public key id or certificate serial.
    pub serial: String,
    /// `Wechatpay-Signature`: base64.
    pub signature: String,
    /// `Wechatpay-Timestamp`: Unix seconds.
    pub timestamp: String,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
}

impl SignedHeaders {
    /// The first header name that appears more than once in `pairs` (names
    /// are case-insensitive), which a notification must not have: which of
    /// two values would be the signed one is anyone's guess.
    pub fn repeated_name(pairs: &[(String, String)]) -> Option<&str> {
        pairs.iter().enumerate().find_map(|(i, (name, _))| {
            pairs[..i]
                .iter()
                .any(|(seen, _)| seen.eq_ignore_ascii_case(name))
                .then_some(name.as_str())
        })
    }

    /// The headers from `(name, value)` pairs (any case); `None` when one is missing.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SignedHeaders> {
        let get = |name: &str| {
            pairs
                .clone()
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Some(SignedHeaders {
            serial: get("wechatpay-serial")?,
            signature: get("wechatpay-signature")?,
            timestamp: get("wechatpay-timestamp")?,
            nonce: get("wechatpay-nonce")?,
        })
    }

    /// The headers of a response.
    pub fn from_response(response: &HttpResponse) -> Option<SignedHeaders> {
        SignedHeaders::from_pairs(
            response
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// Why a signed answer or notification was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A `Wechatpay-*` header is missing.
    #[error("the answer is not signed (a Wechatpay-* header is missing)")]
    Unsigned,
    /// The serial names no key we have.
    #[error("signed with an unknown key serial {0}")]
    UnknownSerial(String),
    /// The timestamp is five minutes or more away from now.
    #[error("the signature's timestamp is five minutes or more away from now")]
    Stale,
    /// The signature does not verify over the raw body.
    #[error("the signature does not verify over the body")]
    Bad,
}

/// Verifies `headers` over the raw `body` at `now`, with the key
/// `key_for(serial)` gives.
pub fn verify_signed(
    headers: &SignedHeaders,
    body: &[u8],
    now: u64,
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
) -> std::result::Result<(), SignatureError> {
    let timestamp: u64 = headers
        .timestamp
        .parse()
        .map_err(|_| SignatureError::Stale)?;
    if timestamp.abs_diff(now) >= MAX_CLOCK_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let key = key_for(&headers.serial)
        .ok_or_else(|| SignatureError::UnknownSerial(headers.serial.clone()))?;
    let mut message = Vec::with_capacity(body.len() + 64);
    message.extend_from_slice(headers.timestamp.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(headers.nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message.push(b'\n');
    key.verify(&message, &headers.signature)
        .map_err(|_| SignatureError::Bad)
}

/// The `Authorization` header value for a request.
pub fn authorization(
    merchant: &V3Merchant,
    method: &str,
    path_and_query: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut message = format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    let signature = merchant.key.sign(&message);
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
        merchant.mchid, merchant.serial_no
    )
}

/// A signed request: `body` is serialised once, and those bytes are both
/// signed and sent.
pub fn request(
    api_base: &Url,
    merchant: &V3Merchant,
    method: Method,
    path_and_query: &str,
    body: Option<&Value>,
    now: u64,
    nonce: &str,
) -> Result<HttpRequest> {
    let mut url = api_base.clone();
    let prefix = api_base.path().trim_end_matches('/');
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(query);
    let signed_path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let bytes = match body {
        Some(value) => serde_json::to_vec(value)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise the body: {e}")))?,
        None => Vec::new(),
    };
    let verb = match method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    let authorization = authorization(merchant, verb, &signed_path, now, nonce, &bytes);
    Ok(HttpRequest {
        method,
        url,
        content_type: body.map(|_| "application/json"),
        body: bytes,
        headers: vec![
            ("Authorization".into(), authorization),
            ("Accept".into(), "application/json".into()),
        ],
    })
}
