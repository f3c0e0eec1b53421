//! The one error type of the library, and the stable kinds it sorts into.
//!
//! Each variant tells a caller what to do next: fix the configuration, fix the
//! order, retry later (network, HTTP status), or read the gateway's own
//! `errcode`/`errmsg`. No message ever contains a secret, an access_token or a
//! signing string: values that come from the merchant's configuration are
//! never formatted into an error.

use std::fmt;

/// Everything that can go wrong while configuring a client or running the flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; `field` names the offending key.
    #[error("invalid config: {field}: {reason}")]
    InvalidConfig {
        /// The configuration key at fault (e.g. `api_base`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The order is unusable; `field` names the offending key. Raised before any
    /// network call.
    #[error("invalid order: {field}: {reason}")]
    InvalidOrder {
        /// The order key at fault (e.g. `total_yuan`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A JSON document given to the library is not JSON at all (a syntax error,
    /// as opposed to a well-formed document with a wrong field).
    #[error("invalid JSON in {document}: {reason}")]
    InvalidJson {
        /// Which document: `config`, `order` or `params`.
        document: &'static str,
        /// The parser's description, with line and column.
        reason: String,
    },

    /// An argument other than the config or the order is unusable (e.g. an
    /// unknown signature scheme or a parameter map that is not flat).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The gateway could not be reached, or did not answer in time.
    #[error("network error: {message}")]
    Network {
        /// True when a connect or total timeout fired.
        timeout: bool,
        /// What failed (never contains the request URL, which carries the token).
        message: String,
    },

    /// The gateway answered with an HTTP status other than 200.
    #[error("gateway answered HTTP {status}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
    },

    /// The gateway answered with a non-zero `errcode`.
    #[error("gateway error {errcode}: {errmsg}")]
    Gateway {
        /// The gateway's `errcode` (e.g. 40001, 45009).
        errcode: i64,
        /// The gateway's `errmsg`, as sent.
        errmsg: String,
    },

    /// The gateway answered 200 with a body that is not the documented shape.
    #[error("malformed gateway response: {0}")]
    MalformedResponse(String),

    /// The shared access_token store (Redis) could not be used.
    #[error("token store error: {0}")]
    TokenStore(String),

    /// API v2 or v3 refused the request with a code of its own: v2's `FAIL`
    /// with its `return_msg` or business `err_code` with its `err_code_des`;
    /// v3's `code` and `message` with the HTTP status.
    #[error("gateway refused the request: {code}: {message}")]
    Rejected {
        /// The code (e.g. `ORDERPAID`, `NOTENOUGH`, `FAIL`, `PARAM_ERROR`).
        code: String,
        /// The gateway's description, as sent.
        message: String,
        /// The HTTP status, when it was not 200 (API v3).
        http_status: Option<u16>,
    },

    /// A notification failed verification: answer it with the failure reply
    /// and do not act on it.
    #[error("invalid notification: {0}")]
    InvalidNotification(String),
}

/// The stable category of an [`Error`], for hosts that switch on kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::InvalidConfig`].
    InvalidConfig,
    /// See [`Error::InvalidOrder`].
    InvalidOrder,
    /// See [`Error::InvalidJson`].
    InvalidJson,
    /// See [`Error::InvalidArgument`].
    InvalidArgument,
    /// See [`Error::Network`].
    Network,
    /// See [`Error::HttpStatus`].
    HttpStatus,
    /// See [`Error::Gateway`].
    Gateway,
    /// See [`Error::MalformedResponse`].
    MalformedResponse,
    /// See [`Error::TokenStore`].
    TokenStore,
    /// See [`Error::Rejected`].
    Rejected,
    /// See [`Error::InvalidNotification`].
    InvalidNotification,
}

impl ErrorKind {
    /// The snake_case name hosts see (`"invalid_order"`, `"gateway"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidOrder => "invalid_order",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Network => "network",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Gateway => "gateway",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::TokenStore => "token_store",
            ErrorKind::Rejected => "rejected",
            ErrorKind::InvalidNotification => "invalid_notification",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::InvalidOrder { .. } => ErrorKind::InvalidOrder,
            Error::InvalidJson { .. } => ErrorKind::InvalidJson,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Network { .. } => ErrorKind::Network,
            Error::HttpStatus { .. } => ErrorKind::HttpStatus,
            Error::Gateway { .. } => ErrorKind::Gateway,
            Error::MalformedResponse(_) => ErrorKind::MalformedResponse,
            Error::TokenStore(_) => ErrorKind::TokenStore,
            Error::Rejected { .. } => ErrorKind::Rejected,
            Error::InvalidNotification(_) => ErrorKind::InvalidNotification,
        }
    }

    /// The gateway's `errcode`, when the gateway answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Error::Gateway { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// The API v2 code (`err_code`, or `FAIL`) when the gateway refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when it was an error status.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::HttpStatus { status } => Some(*status),
            Error::Rejected { http_status, .. } => *http_status,
            _ => None,
        }
    }

    /// The gateway's `errmsg`, when the gateway answered with one.
    pub fn errmsg(&self) -> Option<&str> {
        match self {
            Error::Gateway { errmsg, .. } => Some(errmsg),
            _ => None,
        }
    }

    /// True when the same call may succeed if made again later unchanged
    /// (network or token-store trouble, 5xx, 429, or the gateway's "system
    /// busy" `-1`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { .. } | Error::TokenStore(_) => true,
            Error::HttpStatus { status } => *status >= 500 || *status == 429,
            Error::Gateway { errcode, .. } => *errcode == -1,
            Error::Rejected { code, .. } => code == "SYSTEMERROR",
            _ => false,
        }
    }

    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn order(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidOrder {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
