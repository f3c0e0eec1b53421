//! The uniffi surface of libwxpay: what Kotlin, Swift and Python see.
//!
//! Built with the `uniffi` feature; the bindings under `bindings/` are
//! generated from the cdylib in library mode by `scripts/gen-bindings.sh`.
//! The namespace is `wxpay`.
//!
//! This module is glue only, with no protocol in it and no copy of a core
//! type. The records and enums the bindings pass are the core's own
//! ([`crate::model`]: `Order` is [`crate::OrderFields`], checked into a
//! [`crate::Order`] by the core; `ClientCert` is
//! [`crate::config::ClientCertConfig`]), bound where they are defined under
//! `#[cfg_attr(feature = "uniffi", ...)]`, so their doc comments are what the
//! bindings show. [`crate::Secret`], [`crate::crypto::sign::Fields`] and
//! `PathBuf` are custom types: strings and a map of strings in the hosts.
//!
//! The one binding-only record is [`Config`]: the core's [`crate::Config`]
//! is what a configuration becomes once parsed (enums, defaults filled in,
//! paths and keys checked), while a host writes the document itself, with
//! `None` for "the default". So the record is turned into that JSON document
//! by serde (its field names are the keys) and read by
//! [`crate::Config::from_json`]: defaults, checks and error messages are the
//! core's, written once.
//!
//! Every export runs inside [`guard`], which turns a panic into
//! [`WxPayError::Internal`]: no panic reaches a host.
//!
//! | Rust            | Kotlin (`com.wxpay`)           | Swift (`WxPay`)                | Python (`wxpay`)              |
//! |-----------------|--------------------------------|--------------------------------|-------------------------------|
//! | [`WxPayClient`] | `WxPayClient(config)`          | `try WxPayClient(config:)`     | `WxPayClient(config)`         |
//! | [`WxPayError`]  | `WxPayException.InvalidOrder`… | `WxPayError.InvalidOrder`…     | `WxPayError.InvalidOrder`…    |
//! | [`sign`]        | `sign(scheme, key, params)`    | `try sign(scheme:key:params:)` | `sign(scheme, key, params)`   |
//! | `OrderRef`      | `OrderRef.OutTradeNo("A1")`    | `.outTradeNo(value: "A1")`     | `OrderRef.OUT_TRADE_NO("A1")` |
//! | `TradeState`    | `TradeState.Notpay`            | `.notpay`                      | `TradeState.NOTPAY()`         |
//!
//! The API v2 and v3 operations (`query_order`, `close_order`, `refund`,
//! `query_refunds`, the notification verifiers and replies) are methods of
//! [`WxPayClient`]; on a client configured with `api` `legacy` they raise
//! `InvalidArgument` (the payment verifier and the replies serve every
//! generation). Money is integer fen (`u32`) throughout.
//!
//! Kotlin names the `message` field of the error variants `detail` (uniffi
//! issue 1434: a field called `message` clashes with `Throwable.message`);
//! `uniffi.toml` does that renaming.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::config::ClientCertConfig;
use crate::crypto::sign::Fields;
use crate::model::{
    Order, OrderFields, OrderRef, OrderStatus, PayParams, PaymentNotification, RefundNotification,
    RefundReceipt, RefundRequest, RefundStatus,
};
use crate::util::secret::{serialize_exposed, Secret};
use crate::Fen;

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
fn guard<T>(f: impl FnOnce() -> Result<T, WxPayError>) -> Result<T, WxPayError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(WxPayError::Internal {
            message: "internal error: libwxpay panicked (a bug; please report it); \
                      the call did not complete"
                .to_owned(),
        })
    })
}

/// A merchant's configuration; validated when a `WxPayClient` is built.
///
/// `api` picks the generation: `legacy` (the default, the 2014 flow) needs
/// `app_secret`, `app_key`, `partner_id` and `partner_key`; `v2` needs
/// `mch_id` and `api_key`; `v3` needs `mchid`, `merchant_private_key` (or
/// `merchant_private_key_file`), `merchant_serial_no`, `api_v3_key`, and
/// either `wechatpay_public_key` (or `_file`) with `wechatpay_public_key_id`
/// (public-key mode) or neither (certificate mode: the platform certificates
/// are downloaded). A generation never reads the other's keys; a missing
/// required key is `InvalidConfig` naming it.
///
/// Holds secrets: never log it (Kotlin's `toString`, Python's `str` and
/// Swift's `String(describing:)` print every field).
//
// `None` is written as JSON `null`, which the core reads as absent; the
// fields whose core type is not an `Option` (they have defaults) are left
// out instead.
#[derive(Clone, Serialize, uniffi::Record)]
pub struct Config {
    /// The app's id on the WeChat open platform (`wx...`).
    pub appid: String,
    /// 2014 flow: the app secret; used only to fetch an access_token.
    #[uniffi(default = None)]
    #[serde(serialize_with = "serialize_exposed")]
    pub app_secret: Option<Secret>,
    /// 2014 flow: the 128-character `paySignKey`; used only inside SHA1 signatures.
    #[uniffi(default = None)]
    #[serde(serialize_with = "serialize_exposed")]
    pub app_key: Option<Secret>,
    /// 2014 flow: the Tenpay merchant number (`partner`).
    #[uniffi(default = None)]
    pub partner_id: Option<String>,
    /// 2014 flow: the merchant key of the package MD5 signature.
    #[uniffi(default = None)]
    #[serde(serialize_with = "serialize_exposed")]
    pub partner_key: Option<Secret>,
    /// Where WeChat posts the asynchronous payment (and refund) result.
    pub notify_url: String,
    /// The gateway base URL; default the generation's production gateway
    /// (`https://api.weixin.qq.com`, v2 and v3
    /// `https://api.mch.weixin.qq.com`).
    #[uniffi(default = None)]
    pub api_base: Option<String>,
    /// 2014 flow: `UTF-8` (the default) or `GBK`.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_charset: Option<String>,
    /// The total timeout of one HTTP exchange in milliseconds; default 10000.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// 2014 flow: where the access_token lives: `memory` (the default) or
    /// `redis://HOST:PORT/DB` (needs a build with the `redis` feature).
    #[uniffi(default = None)]
    pub token_store: Option<String>,
    /// 2014 flow: keep working with this process's own token when the shared
    /// store is unreachable, instead of failing; default false.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_store_fallback: Option<bool>,
    /// The API generation: `legacy` (the default), `v2` or `v3`.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// API v2: the merchant id.
    #[uniffi(default = None)]
    pub mch_id: Option<String>,
    /// API v2: the 32-character API key of every signature.
    #[uniffi(default = None)]
    #[serde(serialize_with = "serialize_exposed")]
    pub api_key: Option<Secret>,
    /// API v2: `MD5` (the default) or `HMAC-SHA256`.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_type: Option<String>,
    /// API v2: the merchant's client certificate, needed for refunds
    /// (except against a loopback sandbox, which takes them over plain HTTP).
    #[uniffi(default = None)]
    pub client_cert: Option<ClientCertConfig>,
    /// API v2: use WeChat's own simulation environment (`sandboxnew/` paths,
    /// signed with the key it hands out); default false.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<bool>,
    /// API v3: the merchant id.
    #[uniffi(default = None)]
    pub mchid: Option<String>,
    /// API v3: the merchant's RSA private key as PEM text (PKCS#8 or PKCS#1).
    #[uniffi(default = None)]
    #[serde(serialize_with = "serialize_exposed")]
    pub merchant_private_key: Option<Secret>,
    /// API v3: a file holding that key (`apiclient_key.pem`).
    #[uniffi(default = None)]
    pub merchant_private_key_file: Option<PathBuf>,
    /// API v3: the serial number of the merchant's certificate.
    #[uniffi(default = None)]
    pub merchant_serial_no: Option<String>,
    /// API v3: the API v3 key (exactly 32 bytes).
    #[uniffi(default = None)]
    #[serde(serialize_with = "serialize_exposed")]
    pub api_v3_key: Option<Secret>,
    /// API v3, public-key mode: WeChat Pay's public key as PEM text.
    #[uniffi(default = None)]
    pub wechatpay_public_key: Option<String>,
    /// API v3, public-key mode: a file holding that key.
    #[uniffi(default = None)]
    pub wechatpay_public_key_file: Option<PathBuf>,
    /// API v3, public-key mode: the key's id (`PUB_KEY_ID_...`).
    #[uniffi(default = None)]
    pub wechatpay_public_key_id: Option<String>,
    /// API v3, certificate mode: how often the platform certificates are
    /// downloaded again, in seconds (default 12 h).
    #[uniffi(default = None)]
    pub platform_cert_refresh_secs: Option<u64>,
}

impl Config {
    /// The core's validated configuration: this record as the core's JSON
    /// document (kept in zeroized memory), parsed by
    /// [`crate::Config::from_json`].
    fn into_core(self) -> Result<crate::Config, WxPayError> {
        let text = Zeroizing::new(
            serde_json::to_string(&self)
                .map_err(|e| crate::Error::config("config", e.to_string()))?,
        );
        Ok(crate::Config::from_json(&text)?)
    }
}

/// An expected amount given to a verifier: `None` stays `None`; zero (or
/// more than the gateway's maximum) is `InvalidArgument` naming `argument`.
fn expected_fen(argument: &str, fee: Option<u32>) -> Result<Option<Fen>, WxPayError> {
    fee.map(|fee| {
        Fen::new(i64::from(fee))
            .map_err(|e| crate::Error::InvalidArgument(format!("{argument} {e}")).into())
    })
    .transpose()
}

/// A WeChat Pay client for one merchant configuration.
///
/// Thread-safe: share one instance between all threads, so they share one
/// cached access_token and one pool of keep-alive connections. Calls block
/// (they make HTTP requests): call them off the UI thread.
#[derive(Debug, uniffi::Object)]
pub struct WxPayClient {
    inner: crate::Client,
}

#[uniffi::export]
impl WxPayClient {
    /// Validates `config` and builds a client; raises `InvalidConfig`.
    #[uniffi::constructor]
    pub fn new(config: Config) -> Result<Arc<Self>, WxPayError> {
        guard(|| {
            crate::util::logging::init_from_env();
            let inner = crate::Client::new(config.into_core()?)?;
            Ok(Arc::new(WxPayClient { inner }))
        })
    }

    /// Creates the order and returns the signed parameters for the app
    /// (2014 flow: access_token, signed package, `genprepay`; API v2
    /// `unifiedorder`; API v3 `/v3/pay/transactions/app`). An order that
    /// does not check raises `InvalidOrder` before any network call.
    pub fn build_pay_params(&self, order: OrderFields) -> Result<PayParams, WxPayError> {
        guard(|| Ok(self.inner.build_pay_params(&Order::try_from(order)?)?))
    }

    /// API v2 and v3: the state of an order (v2 `orderquery`).
    pub fn query_order(&self, order: OrderRef) -> Result<OrderStatus, WxPayError> {
        guard(|| Ok(self.inner.query_order(&order)?))
    }

    /// API v2 and v3: closes an unpaid order (v2 `closeorder`); a paid one
    /// raises `Rejected` with code `ORDERPAID` (v3: `ORDER_PAID`, with its
    /// `http_status`).
    pub fn close_order(&self, out_trade_no: String) -> Result<(), WxPayError> {
        guard(|| Ok(self.inner.close_order(&out_trade_no)?))
    }

    /// API v2 and v3: refunds all or part of a paid order (v2
    /// `secapi/pay/refund`, over mutual TLS with `client_cert`; v3
    /// RSA-signed). An unpaid order raises `Rejected` with code
    /// `TRADE_STATE_ERROR`; more than is left, `NOTENOUGH` (v3 `NOT_ENOUGH`).
    pub fn refund(&self, refund: RefundRequest) -> Result<RefundReceipt, WxPayError> {
        guard(|| Ok(self.inner.refund(&refund)?))
    }

    /// API v2: the refunds of an order (`refundquery`); an order without
    /// refunds raises `Rejected` with code `REFUNDNOTEXIST`.
    pub fn query_refunds(&self, order: OrderRef) -> Result<Vec<RefundStatus>, WxPayError> {
        guard(|| Ok(self.inner.query_refunds(&order)?))
    }

    /// Verifies a payment notification: the raw body WeChat POSTed to
    /// `notify_url` (API v2: the XML; 2014 flow: the query string). Pass the
    /// order's amount as `expected_total_fee` to have it checked.
    ///
    /// Raises `InvalidNotification` for anything that does not verify: answer
    /// it with `notification_failure_reply` and act on nothing. On success,
    /// act on it idempotently per `out_trade_no` (WeChat repeats it until it
    /// gets `notification_success_reply`).
    pub fn verify_payment_notification(
        &self,
        body: Vec<u8>,
        expected_total_fee: Option<u32>,
    ) -> Result<PaymentNotification, WxPayError> {
        guard(|| {
            let expected = expected_fen("expected_total_fee", expected_total_fee)?;
            Ok(self.inner.verify_payment_notification(&body, expected)?)
        })
    }

    /// API v2: decrypts and checks a refund notification (its `req_info`,
    /// under the API key). Raises `InvalidNotification` when it does not
    /// verify.
    pub fn verify_refund_notification(
        &self,
        body: Vec<u8>,
        expected_refund_fee: Option<u32>,
    ) -> Result<RefundNotification, WxPayError> {
        guard(|| {
            let expected = expected_fen("expected_refund_fee", expected_refund_fee)?;
            Ok(self.inner.verify_refund_notification(&body, expected)?)
        })
    }

    /// Verifies an API v3 payment notification: `headers` are the request's
    /// headers (names in any case; the `Wechatpay-Serial`, `-Signature`,
    /// `-Timestamp` and `-Nonce` ones are used, over the raw `body`), then
    /// the decrypted transaction, the merchant's ids and
    /// `expected_total_fee`. Two names that differ only in case raise
    /// `InvalidArgument`.
    ///
    /// Raises `InvalidNotification` for anything that does not verify:
    /// answer it with status 500 and `notification_failure_reply`, and act on
    /// nothing. On success, act on it idempotently per `out_trade_no` and
    /// answer with status 204 and an empty body.
    pub fn verify_signed_notification(
        &self,
        headers: HashMap<String, String>,
        body: Vec<u8>,
        expected_total_fee: Option<u32>,
    ) -> Result<PaymentNotification, WxPayError> {
        guard(|| {
            let expected = expected_fen("expected_total_fee", expected_total_fee)?;
            let headers: Vec<(String, String)> = headers.into_iter().collect();
            Ok(self
                .inner
                .verify_signed_notification(&headers, &body, expected)?)
        })
    }

    /// API v3, certificate mode: downloads WeChat Pay's platform certificates
    /// now and returns how many there are (clients also do it by
    /// themselves when needed).
    pub fn download_certificates(&self) -> Result<u32, WxPayError> {
        guard(|| {
            let count = self.inner.download_certificates()?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    /// The body that acknowledges a verified notification (the v2 SUCCESS
    /// XML, `success` for the 2014 flow, the empty string for API v3, sent
    /// with status 204).
    pub fn notification_success_reply(&self) -> Result<String, WxPayError> {
        guard(|| Ok(self.inner.notification_success_reply()))
    }

    /// The body that refuses a notification, so WeChat sends it again (the
    /// v2 FAIL XML carrying `reason`, `fail` for the 2014 flow, or for API v3
    /// `{"code":"FAIL","message":reason}`, sent with status 500). Do not
    /// put secrets in `reason`: it goes back to the sender.
    pub fn notification_failure_reply(&self, reason: String) -> Result<String, WxPayError> {
        guard(|| Ok(self.inner.notification_failure_reply(&reason)))
    }
}

/// Signs `params` with `scheme` and returns the hex signature. Schemes:
/// `legacy-package` (the 2014 order package: MD5, upper-case, keyed with the
/// partner key), `legacy-sha1` (the 2014 `app_signature` / app `sign`: SHA1,
/// lower-case, keyed with the app key), `v2-md5` and `v2-hmac-sha256` (API
/// v2, upper-case, keyed with the API key). Raises `InvalidArgument` for an
/// unknown scheme or a parameter the scheme refuses (e.g. `appkey`).
#[uniffi::export]
pub fn sign(scheme: String, key: Secret, params: Fields) -> Result<String, WxPayError> {
    guard(|| {
        let scheme: crate::Scheme = scheme.parse()?;
        Ok(crate::crypto::sign::sign(scheme, &key, &params)?.into_signature())
    })
}

#[cfg(test)]
mod tests {
    //! The glue only: records reach the core, errors come back mapped, the
    //! panic guard. The flow itself is tested in the core and `tests/flow.rs`.

    use super::*;
    use crate::config::Api;
    use serde_json::json;

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

    /// A 2014-flow configuration with every optional field `None`.
    fn config() -> Config {
        Config {
            appid: "wxd930ea5d5a258f4f".into(),
            app_secret: Some("s".into()),
            app_key: Some("k".into()),
            partner_id: Some("1900000109".into()),
            partner_key: Some("p".into()),
            notify_url: "https://example.com/notify".into(),
            api_base: None,
            input_charset: None,
            timeout_ms: None,
            token_store: None,
            token_store_fallback: None,
            api: None,
            mch_id: None,
            api_key: None,
            sign_type: None,
            client_cert: None,
            sandbox: None,
            mchid: None,
            merchant_private_key: None,
            merchant_private_key_file: None,
            merchant_serial_no: None,
            api_v3_key: None,
            wechatpay_public_key: None,
            wechatpay_public_key_file: None,
            wechatpay_public_key_id: None,
            platform_cert_refresh_secs: None,
        }
    }

    /// An API v3 merchant in public-key mode, with the sandbox's keys and a
    /// gateway nothing listens on.
    fn v3_config() -> Config {
        Config {
            api: Some("v3".into()),
            mchid: Some("1900000109".into()),
            merchant_private_key: Some(include_str!("../sandbox/keys/merchant_key.pem").into()),
            merchant_serial_no: Some("S1".into()),
            api_v3_key: Some("0123456789abcdef0123456789abcdef".into()),
            wechatpay_public_key: Some(
                include_str!("../sandbox/keys/platform_public_key.pem").into(),
            ),
            wechatpay_public_key_id: Some("PUB_KEY_ID_1".into()),
            api_base: Some("http://127.0.0.1:1".into()),
            ..without_legacy_keys()
        }
    }

    /// An API v2 merchant with the public test key.
    fn v2_config() -> Config {
        Config {
            api: Some("v2".into()),
            mch_id: Some("10000100".into()),
            api_key: Some("192006250b4c09247ec02edce69f6a2d".into()),
            ..without_legacy_keys()
        }
    }

    /// `config()` without the 2014 flow's keys.
    fn without_legacy_keys() -> Config {
        Config {
            app_secret: None,
            app_key: None,
            partner_id: None,
            partner_key: None,
            ..config()
        }
    }

    fn no_cert() -> ClientCertConfig {
        ClientCertConfig {
            cert_pem_file: None,
            key_pem_file: None,
            pem: None,
            pkcs12_file: None,
            pkcs12_password: None,
        }
    }

    /// The JSON document a record becomes.
    fn document(config: &Config) -> serde_json::Value {
        serde_json::to_value(config).expect("a record serializes")
    }

    #[test]
    fn none_leaves_the_core_defaults_and_every_field_is_a_core_key() {
        let doc = document(&config());
        assert_eq!(doc["app_secret"], "s");
        assert_eq!(doc["api_base"], serde_json::Value::Null);
        for defaulted in [
            "api",
            "input_charset",
            "timeout_ms",
            "token_store_fallback",
            "sign_type",
            "sandbox",
        ] {
            assert!(doc.get(defaulted).is_none(), "{defaulted} in {doc}");
        }
        let core = config().into_core().expect("minimal config is valid");
        assert_eq!(core.api, Api::Legacy);
        assert_eq!(core.timeout_ms, crate::config::DEFAULT_TIMEOUT_MS);

        // Every field set: the core knows every key (it refuses unknown ones).
        let every = Config {
            api_base: Some("http://127.0.0.1:9".into()),
            input_charset: Some("GBK".into()),
            timeout_ms: Some(1234),
            token_store: Some("memory".into()),
            token_store_fallback: Some(true),
            api: Some("v3".into()),
            mch_id: Some("10000100".into()),
            api_key: Some("k".into()),
            sign_type: Some("HMAC-SHA256".into()),
            client_cert: Some(ClientCertConfig {
                cert_pem_file: Some("c.pem".into()),
                key_pem_file: Some("k.pem".into()),
                pem: Some("PEM".into()),
                pkcs12_file: Some("c.p12".into()),
                pkcs12_password: Some("10000100".into()),
            }),
            sandbox: Some(true),
            merchant_private_key_file: Some("key.pem".into()),
            wechatpay_public_key_file: Some("pub.pem".into()),
            platform_cert_refresh_secs: Some(600),
            ..v3_config()
        };
        let doc = document(&every);
        assert_eq!(doc.as_object().map(|m| m.len()), Some(26), "{doc}");
        assert_eq!(doc["client_cert"]["pkcs12_password"], "10000100");
        let core: crate::Config = serde_json::from_value(doc).expect("every key is the core's");
        assert_eq!(
            (core.api, core.timeout_ms, core.sandbox),
            (Api::V3, 1234, true)
        );
        assert_eq!(core.input_charset, crate::Charset::Gbk);
        assert_eq!(core.platform_cert_refresh_secs, Some(600));
    }

    #[test]
    fn config_errors_name_the_field() {
        let field_of = |config: Config| match config.into_core().err() {
            Some(WxPayError::InvalidConfig { field, message }) => {
                assert!(message.starts_with("invalid config: "), "{message}");
                field
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let with = |change: fn(&mut Config)| {
            let mut config = config();
            change(&mut config);
            field_of(config)
        };
        assert_eq!(
            with(|c| c.api_base = Some("http://10.0.0.1".into())),
            "api_base"
        );
        assert_eq!(with(|c| c.partner_key = Some("".into())), "partner_key");
        assert_eq!(with(|c| c.app_secret = None), "app_secret");
        assert_eq!(with(|c| c.api = Some("v9".into())), "config");
        let v2 = |change: fn(&mut Config)| {
            let mut config = v2_config();
            change(&mut config);
            field_of(config)
        };
        assert_eq!(v2(|c| c.api_key = None), "api_key");
        assert_eq!(v2(|c| c.mch_id = None), "mch_id");
        assert_eq!(v2(|c| c.sign_type = Some("SHA1".into())), "config");
        // Without `api`, the 2014 keys are required.
        assert_eq!(v2(|c| c.api = None), "app_secret");
    }

    #[test]
    fn v2_and_v3_configs_reach_the_core() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let core = Config {
            sign_type: Some("HMAC-SHA256".into()),
            sandbox: Some(true),
            client_cert: Some(ClientCertConfig {
                cert_pem_file: Some(format!("{fixtures}/apiclient_cert.pem").into()),
                key_pem_file: Some(format!("{fixtures}/apiclient_key.pem").into()),
                ..no_cert()
            }),
            ..v2_config()
        }
        .into_core()
        .expect("full v2 config is valid");
        assert_eq!(core.api, Api::V2);
        assert!(core.sandbox);
        assert_eq!(
            core.client_cert.and_then(|c| c.key_pem_file),
            Some(format!("{fixtures}/apiclient_key.pem").into())
        );

        let core = v3_config().into_core().expect("v3 config is valid");
        assert_eq!(core.api, Api::V3);
        assert_eq!(
            core.wechatpay_public_key_id.as_deref(),
            Some("PUB_KEY_ID_1")
        );
        assert_eq!(
            core.api_v3_key.as_ref().map(Secret::expose),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            document(&v3_config())["platform_cert_refresh_secs"],
            json!(null)
        );
    }

    /// An order of 19.99 yuan, given in yuan.
    fn order() -> OrderFields {
        let order = Order::new("A1", Fen::new(1999).expect("fen"), "b", "1.2.3.4").expect("order");
        OrderFields {
            total_fee: None,
            total_yuan: Some("19.99".into()),
            ..order.into()
        }
    }

    #[test]
    fn order_errors_name_the_field_before_any_call() {
        // api_base points nowhere: an attempt to send would be a Network error.
        let client = WxPayClient::new(Config {
            api_base: Some("http://127.0.0.1:1".into()),
            ..config()
        })
        .expect("legacy client");
        for (fee, yuan, field) in [
            (None, Some("0.001"), "total_yuan"),
            (None, Some("0"), "total_yuan"),
            (Some(0), None, "total_fee"),
            (None, None, "total_fee"),
            (Some(1), Some("0.01"), "total_fee"),
        ] {
            let err = client
                .build_pay_params(OrderFields {
                    total_fee: fee,
                    total_yuan: yuan.map(str::to_owned),
                    ..order()
                })
                .err();
            assert!(
                matches!(&err, Some(WxPayError::InvalidOrder { field: f, message })
                    if f == field && message.starts_with(&format!("invalid order: {field}"))),
                "{fee:?} {yuan:?}: {err:?}"
            );
        }
        assert!(matches!(
            client.build_pay_params(order()),
            Err(WxPayError::Network { .. })
        ));
    }

    #[test]
    fn client_certificates_are_read_when_the_client_is_built() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        WxPayClient::new(Config {
            client_cert: Some(ClientCertConfig {
                pkcs12_file: Some(format!("{fixtures}/apiclient_cert.p12").into()),
                pkcs12_password: Some("10000100".into()),
                ..no_cert()
            }),
            ..v2_config()
        })
        .expect("client with a PKCS#12 certificate");
        let field_of = |cert: ClientCertConfig| match WxPayClient::new(Config {
            client_cert: Some(cert),
            ..v2_config()
        })
        .err()
        {
            Some(WxPayError::InvalidConfig { field, message }) => {
                assert!(!message.contains("SECRET"), "{message}");
                field
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(field_of(no_cert()), "client_cert");
        assert_eq!(
            field_of(ClientCertConfig {
                pkcs12_file: Some("/nonexistent/apiclient_cert.p12".into()),
                pkcs12_password: Some("SECRET-PASSWORD".into()),
                ..no_cert()
            }),
            "client_cert"
        );
    }

    /// An API v2 payment notification for `v2_config()`, signed with its key.
    fn v2_notification(total_fee: &str) -> Vec<u8> {
        let mut fields: Fields = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("out_trade_no", "A1"),
            ("transaction_id", "4200000001202401010000000001"),
            ("total_fee", total_fee),
            ("time_end", "20240101120000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let key = crate::Secret::new("192006250b4c09247ec02edce69f6a2d".to_owned());
        let sign = crate::crypto::sign::sign_v2(&fields, &key, crate::crypto::sign::SignType::Md5);
        fields.insert("sign".into(), sign.into_signature());
        crate::api::v2::xml::write(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .into_bytes()
    }

    #[test]
    fn notifications_verify_through_the_client() {
        let client = WxPayClient::new(v2_config()).expect("v2 client");
        let body = v2_notification("1999");
        let n = client
            .verify_payment_notification(body.clone(), Some(1999))
            .expect("verifies");
        assert!(n.paid);
        assert_eq!(n.out_trade_no, "A1");
        assert_eq!(n.total_fee, 1999);
        assert_eq!(n.time_end.as_deref(), Some("20240101120000"));
        assert_eq!(n.fields["mch_id"], "10000100");
        assert!(n.fields.contains_key("sign"));

        let invalid = |r: Result<PaymentNotification, WxPayError>| {
            matches!(r, Err(WxPayError::InvalidNotification { .. }))
        };
        // The wrong amount, and a body altered after signing.
        assert!(invalid(
            client.verify_payment_notification(body.clone(), Some(1))
        ));
        let tampered = String::from_utf8(body.clone())
            .expect("utf-8")
            .replace("1999", "2999");
        assert!(invalid(
            client.verify_payment_notification(tampered.into_bytes(), None)
        ));
        assert!(matches!(
            client.verify_payment_notification(body, Some(0)),
            Err(WxPayError::InvalidArgument { message }) if message.contains("expected_total_fee")
        ));
        assert!(matches!(
            client.verify_refund_notification(b"<xml></xml>".to_vec(), None),
            Err(WxPayError::InvalidNotification { .. })
        ));

        assert_eq!(
            client.notification_success_reply().as_deref(),
            Ok(crate::api::v2::notify::V2_SUCCESS_REPLY)
        );
        let fail = client
            .notification_failure_reply("busy".into())
            .expect("reply");
        assert!(fail.contains("FAIL") && fail.contains("busy"), "{fail}");
    }

    #[test]
    fn a_legacy_client_refuses_v2_operations_before_any_call() {
        // api_base points nowhere: an attempt to send would be a Network error.
        let client = WxPayClient::new(Config {
            api_base: Some("http://127.0.0.1:1".into()),
            ..config()
        })
        .expect("legacy client");
        let order = || OrderRef::OutTradeNo("A1".into());
        let refused = |r: Result<(), WxPayError>| matches!(&r, Err(WxPayError::InvalidArgument { message }) if message.contains("legacy"));
        assert!(refused(client.query_order(order()).map(drop)));
        assert!(refused(client.close_order("A1".into())));
        assert!(refused(client.query_refunds(order()).map(drop)));
        assert!(refused(
            client
                .refund(RefundRequest {
                    order: order(),
                    out_refund_no: "R1".into(),
                    total_fee: 2,
                    refund_fee: 1,
                    refund_desc: None,
                })
                .map(drop)
        ));
        assert!(refused(
            client
                .verify_refund_notification(Vec::new(), None)
                .map(drop)
        ));
        assert!(matches!(
            client.verify_payment_notification(b"sign=x".to_vec(), None),
            Err(WxPayError::InvalidNotification { .. })
        ));
        assert_eq!(
            client.notification_success_reply().as_deref(),
            Ok("success")
        );
        assert_eq!(
            client.notification_failure_reply("x".into()).as_deref(),
            Ok("fail")
        );
    }

    #[test]
    fn signed_notifications_check_their_headers() {
        let client = WxPayClient::new(v3_config()).expect("a v3 client");
        let twice = HashMap::from([
            ("Wechatpay-Nonce".to_owned(), "a".to_owned()),
            ("wechatpay-nonce".to_owned(), "b".to_owned()),
        ]);
        let err = client
            .verify_signed_notification(twice, b"{}".to_vec(), None)
            .expect_err("a header twice");
        assert!(
            matches!(&err, WxPayError::InvalidArgument { message } if message.contains("more than once")),
            "{err:?}"
        );
        let err = client
            .verify_signed_notification(HashMap::new(), b"{}".to_vec(), Some(1))
            .expect_err("no headers");
        assert!(
            matches!(&err, WxPayError::InvalidNotification { .. }),
            "{err:?}"
        );
        assert_eq!(client.notification_success_reply().expect("reply"), "");

        let v2 = WxPayClient::new(v2_config()).expect("a v2 client");
        let err = v2
            .verify_signed_notification(HashMap::new(), b"{}".to_vec(), None)
            .expect_err("v3 only");
        assert!(
            matches!(&err, WxPayError::InvalidArgument { .. }),
            "{err:?}"
        );
        assert!(matches!(
            v2.download_certificates(),
            Err(WxPayError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn sign_parses_the_scheme_and_signs() {
        // The public package vector of PROTOCOL.md 1.2.
        let params = crate::crypto::sign::tests::public_package_fields();
        let signed = sign(
            "legacy-package".into(),
            "8934e7d15453e97507ef794cf7b0519d".into(),
            params.clone(),
        );
        assert_eq!(signed.as_deref(), Ok("7F77B507B755B3262884291517E380F8"));
        let sha1 = sign("legacy-sha1".into(), "k".into(), params.clone()).expect("signs");
        assert_eq!(sha1.len(), 40);
        assert!(matches!(
            sign("md5".into(), "k".into(), params),
            Err(WxPayError::InvalidArgument { .. })
        ));
    }
}
