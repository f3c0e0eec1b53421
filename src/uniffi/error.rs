//! The one error type of the bindings, [`WxPayError`]: a small public enum
//! mapped from the core's [`crate::Error`], and [`guard`], which every export
//! runs in so that a panic becomes [`WxPayError::Internal`] instead of
//! reaching a host.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Every error a libwxpay call can raise: one variant per kind of the core
/// library's errors, plus `Internal` for a bug.
///
/// `message` is the core error's whole text (it names the field and never
/// contains a secret). Kotlin: `WxPayException.<Variant>`, where `message` is
/// called `detail`; Swift: `WxPayError.<variant>`; Python:
/// `WxPayError.<Variant>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WxPayError {
    /// The configuration is unusable; `field` names the offending key.
    #[error("{message}")]
    InvalidConfig {
        /// The configuration key at fault (e.g. `api_base`).
        field: String,
        /// The whole message, e.g. `invalid config: api_base: ...`.
        message: String,
    },
    /// The order is unusable; `field` names the offending key. Raised before
    /// any network call.
    #[error("{message}")]
    InvalidOrder {
        /// The order key at fault (e.g. `total_yuan`).
        field: String,
        /// The whole message, e.g. `invalid order: total_yuan: ...`.
        message: String,
    },
    /// A JSON document is not JSON at all (from the bindings, only a bug can
    /// cause this: they build the JSON themselves).
    #[error("{message}")]
    InvalidJson {
        /// Which document: `config`, `order` or `params`.
        document: String,
        /// The parser's description.
        message: String,
    },
    /// Another argument is unusable (e.g. an unknown signature scheme).
    #[error("{message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
    /// The gateway could not be reached, or did not answer in time; retryable.
    #[error("{message}")]
    Network {
        /// True when a connect or total timeout fired.
        timeout: bool,
        /// What failed (never the request URL, which carries the token).
        message: String,
    },
    /// The gateway answered with an HTTP status other than 200.
    #[error("{message}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// E.g. `gateway answered HTTP 503`.
        message: String,
    },
    /// The gateway answered with a non-zero `errcode`, passed on unchanged.
    #[error("{message}")]
    Gateway {
        /// The gateway's `errcode` (e.g. 40001, 45009).
        errcode: i64,
        /// The gateway's `errmsg`, as sent.
        errmsg: String,
        /// E.g. `gateway error 45009: api freq out of limit`.
        message: String,
    },
    /// The gateway answered 200 with a body that is not the documented shape.
    #[error("{message}")]
    MalformedResponse {
        /// What was wrong with the body.
        message: String,
    },
    /// The shared access_token store (Redis) could not be used; retryable.
    #[error("{message}")]
    TokenStore {
        /// What failed (never the store's password).
        message: String,
    },
    /// API v2 or v3 refused the request with a code of its own.
    #[error("{message}")]
    Rejected {
        /// The code (e.g. `ORDERPAID`, `NOTENOUGH`, `FAIL`; v3 `ORDER_PAID`,
        /// `NOT_ENOUGH`, `ORDER_NOT_EXIST`).
        code: String,
        /// The gateway's description of the code, as sent.
        description: String,
        /// The whole message, e.g. `gateway refused the request: ...`.
        message: String,
        /// API v3: the HTTP status the refusal came with (e.g. 400, 404);
        /// `None` for API v2, which refuses with 200.
        http_status: Option<u16>,
    },
    /// A payment notification failed verification: do not act on it.
    #[error("{message}")]
    InvalidNotification {
        /// What failed.
        message: String,
    },
    /// A bug in libwxpay (a caught panic); the call did not complete. Report it.
    #[error("{message}")]
    Internal {
        /// A fixed description; the panic's own text is not passed on, since
        /// it could quote a value that must stay secret.
        message: String,
    },
}

impl From<crate::Error> for WxPayError {
    fn from(error: crate::Error) -> Self {
        use crate::Error as E;
        let message = error.to_string();
        match error {
            E::InvalidConfig { field, .. } => WxPayError::InvalidConfig { field, message },
            E::InvalidOrder { field, .. } => WxPayError::InvalidOrder { field, message },
            E::InvalidJson { document, .. } => WxPayError::InvalidJson {
                document: document.to_owned(),
                message,
            },
            E::InvalidArgument(_) => WxPayError::InvalidArgument { message },
            E::Network { timeout, .. } => WxPayError::Network { timeout, message },
            E::HttpStatus { status } => WxPayError::HttpStatus { status, message },
            E::Gateway { errcode, errmsg } => WxPayError::Gateway {
                errcode,
                errmsg,
                message,
            },
            E::MalformedResponse(_) => WxPayError::MalformedResponse { message },
            E::TokenStore(_) => WxPayError::TokenStore { message },
            E::Rejected {
                code,
                message: description,
                http_status,
            } => WxPayError::Rejected {
                code,
                description,
                message,
                http_status,
            },
            E::InvalidNotification(_) => WxPayError::InvalidNotification { message },
        }
    }
}

/// Runs `f`, turning a panic into [`WxPayError::Internal`].
///
/// `AssertUnwindSafe` is sound here: after a panic the call's result is
/// discarded, and the only state that outlives it (the client's token cache)
/// sits behind a lock that recovers or re-fetches.
pub(super) fn guard<T>(f: impl FnOnce() -> Result<T, WxPayError>) -> Result<T, WxPayError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(WxPayError::Internal {
            message: "internal error: libwxpay panicked (a bug; please report it); \
                      the call did not complete"
                .to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_error_maps_to_its_variant() {
        use crate::Error as E;
        let gateway: WxPayError = E::Gateway {
            errcode: 45009,
            errmsg: "api freq out of limit".into(),
        }
        .into();
        assert_eq!(
            gateway,
            WxPayError::Gateway {
                errcode: 45009,
                errmsg: "api freq out of limit".into(),
                message: "gateway error 45009: api freq out of limit".into(),
            }
        );
        type Check = fn(&WxPayError) -> bool;
        let rejected: WxPayError = E::Rejected {
            code: "ORDERPAID".into(),
            message: "order paid".into(),
            http_status: None,
        }
        .into();
        assert!(
            matches!(&rejected, WxPayError::Rejected { code, description, message, http_status: None }
                if code == "ORDERPAID" && description == "order paid" && message.contains("ORDERPAID")),
            "{rejected:?}"
        );
        let rejected_v3: WxPayError = E::Rejected {
            code: "ORDER_NOT_EXIST".into(),
            message: "none".into(),
            http_status: Some(404),
        }
        .into();
        assert!(
            matches!(
                &rejected_v3,
                WxPayError::Rejected {
                    http_status: Some(404),
                    ..
                }
            ),
            "{rejected_v3:?}"
        );
        let cases: [(E, Check); 8] = [
            (E::InvalidNotification("x".into()), |e| {
                matches!(e, WxPayError::InvalidNotification { .. })
            }),
            (E::TokenStore("x".into()), |e| {
                matches!(e, WxPayError::TokenStore { .. })
            }),
            (
                E::InvalidJson {
                    document: "order",
                    reason: "x".into(),
                },
                |e| matches!(e, WxPayError::InvalidJson { document, .. } if document == "order"),
            ),
            (E::InvalidArgument("x".into()), |e| {
                matches!(e, WxPayError::InvalidArgument { .. })
            }),
            (
                E::Network {
                    timeout: true,
                    message: "x".into(),
                },
                |e| matches!(e, WxPayError::Network { timeout: true, .. }),
            ),
            (
                E::HttpStatus { status: 503 },
                |e| matches!(e, WxPayError::HttpStatus { status: 503, message } if message.contains("503")),
            ),
            (E::MalformedResponse("x".into()), |e| {
                matches!(e, WxPayError::MalformedResponse { .. })
            }),
            (
                E::InvalidOrder {
                    field: "body".into(),
                    reason: "x".into(),
                },
                |e| matches!(e, WxPayError::InvalidOrder { field, .. } if field == "body"),
            ),
        ];
        for (core, check) in cases {
            let shown = core.to_string();
            let mapped = WxPayError::from(core);
            assert!(check(&mapped), "{mapped:?}");
            assert_eq!(mapped.to_string(), shown);
        }
    }

    #[test]
    fn a_panic_becomes_internal() {
        let result: Result<(), WxPayError> = guard(|| panic!("secret-looking text"));
        match result {
            Err(WxPayError::Internal { message }) => {
                assert!(!message.contains("secret"), "{message}");
            }
            other => panic!("expected Internal, got {other:?}"),
        }
        assert_eq!(guard(|| Ok(5)), Ok(5));
    }
}
