//! The uniffi surface of libwxpay: what Kotlin, Swift and Python see.
//!
//! Built with the `uniffi` feature; the bindings under `bindings/` are
//! generated from the cdylib in library mode by `scripts/gen-bindings.sh`.
//! The namespace is `wxpay`.
//!
//! This module is glue only. Records are turned into the core's JSON and
//! parsed by [`crate::Config::from_json`] and [`crate::Order::from_json`], so
//! validation and its messages are the core's, written once. Every export runs
//! inside [`guard`], which turns a panic into [`WxPayError::Internal`]: no
//! panic reaches a host.
//!
//! | Rust            | Kotlin (`com.wxpay`)           | Swift (`WxPay`)                | Python (`wxpay`)              |
//! |-----------------|--------------------------------|--------------------------------|-------------------------------|
//! | [`WxPayClient`] | `WxPayClient(config)`          | `try WxPayClient(config:)`     | `WxPayClient(config)`         |
//! | [`WxPayError`]  | `WxPayException.InvalidOrder`… | `WxPayError.InvalidOrder`…     | `WxPayError.InvalidOrder`…    |
//! | [`sign`]        | `sign(scheme, key, params)`    | `try sign(scheme:key:params:)` | `sign(scheme, key, params)`   |
//! | [`OrderRef`]    | `OrderRef.OutTradeNo("A1")`    | `.outTradeNo(value: "A1")`     | `OrderRef.OUT_TRADE_NO("A1")` |
//! | [`TradeState`]  | `TradeState.Notpay`            | `.notpay`                      | `TradeState.NOTPAY()`         |
//!
//! The API v2 operations (`query_order`, `close_order`, `refund`,
//! `query_refunds`, the notification verifiers and replies) are methods of
//! [`WxPayClient`]; on a client configured with `api` `legacy` they raise
//! `InvalidArgument` (the payment verifier and the replies serve both
//! generations).
//! Their records mirror the core's [`crate::v2`] and [`crate::notify`] types
//! field for field; money is integer fen (`u32`) throughout.
//!
//! Kotlin names the `message` field of the error variants `detail` (uniffi
//! issue 1434: a field called `message` clashes with `Throwable.message`);
//! `uniffi.toml` does that renaming.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

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
#[derive(Clone, uniffi::Record)]
pub struct Config {
    /// The app's id on the WeChat open platform (`wx...`).
    pub appid: String,
    /// 2014 flow: the app secret; used only to fetch an access_token.
    #[uniffi(default = None)]
    pub app_secret: Option<String>,
    /// 2014 flow: the 128-character `paySignKey`; used only inside SHA1 signatures.
    #[uniffi(default = None)]
    pub app_key: Option<String>,
    /// 2014 flow: the Tenpay merchant number (`partner`).
    #[uniffi(default = None)]
    pub partner_id: Option<String>,
    /// 2014 flow: the merchant key of the package MD5 signature.
    #[uniffi(default = None)]
    pub partner_key: Option<String>,
    /// Where WeChat posts the asynchronous payment (and v2 refund) result.
    pub notify_url: String,
    /// The gateway base URL; default the generation's production gateway
    /// (`https://api.weixin.qq.com`, v2 `https://api.mch.weixin.qq.com`).
    #[uniffi(default = None)]
    pub api_base: Option<String>,
    /// 2014 flow: `UTF-8` (the default) or `GBK`.
    #[uniffi(default = None)]
    pub input_charset: Option<String>,
    /// The total timeout of one HTTP exchange in milliseconds; default 10000.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// 2014 flow: where the access_token lives: `memory` (the default) or
    /// `redis://HOST:PORT/DB` (needs a build with the `redis` feature).
    #[uniffi(default = None)]
    pub token_store: Option<String>,
    /// 2014 flow: keep working with this process's own token when the shared
    /// store is unreachable, instead of failing; default false.
    #[uniffi(default = None)]
    pub token_store_fallback: Option<bool>,
    /// The API generation: `legacy` (the default) or `v2`.
    #[uniffi(default = None)]
    pub api: Option<String>,
    /// API v2: the merchant id.
    #[uniffi(default = None)]
    pub mch_id: Option<String>,
    /// API v2: the 32-character API key of every signature.
    #[uniffi(default = None)]
    pub api_key: Option<String>,
    /// API v2: `MD5` (the default) or `HMAC-SHA256`.
    #[uniffi(default = None)]
    pub sign_type: Option<String>,
    /// API v2: the merchant's client certificate, needed for refunds
    /// (except against a loopback sandbox, which takes them over plain HTTP).
    #[uniffi(default = None)]
    pub client_cert: Option<ClientCert>,
    /// API v2: use WeChat's own simulation environment (`sandboxnew/` paths,
    /// signed with the key it hands out); default false.
    #[uniffi(default = None)]
    pub sandbox: Option<bool>,
    /// API v3: the merchant id.
    #[uniffi(default = None)]
    pub mchid: Option<String>,
    /// API v3: the merchant's RSA private key as PEM text (PKCS#8 or PKCS#1).
    #[uniffi(default = None)]
    pub merchant_private_key: Option<String>,
    /// API v3: a file holding that key (`apiclient_key.pem`).
    #[uniffi(default = None)]
    pub merchant_private_key_file: Option<String>,
    /// API v3: the serial number of the merchant's certificate.
    #[uniffi(default = None)]
    pub merchant_serial_no: Option<String>,
    /// API v3: the API v3 key (exactly 32 bytes).
    #[uniffi(default = None)]
    pub api_v3_key: Option<String>,
    /// API v3, public-key mode: WeChat Pay's public key as PEM text.
    #[uniffi(default = None)]
    pub wechatpay_public_key: Option<String>,
    /// API v3, public-key mode: a file holding that key.
    #[uniffi(default = None)]
    pub wechatpay_public_key_file: Option<String>,
    /// API v3, public-key mode: the key's id (`PUB_KEY_ID_...`).
    #[uniffi(default = None)]
    pub wechatpay_public_key_id: Option<String>,
    /// API v3, certificate mode: how often the platform certificates are
    /// downloaded again, in seconds (default 12 h).
    #[uniffi(default = None)]
    pub platform_cert_refresh_secs: Option<u64>,
}

/// API v2: the merchant's client certificate for refunds (mutual TLS), read
/// once when the client is built (a bad file or password is `InvalidConfig`
/// naming `client_cert`).
///
/// Give one of: `pem` (certificate and private key as inline PEM text);
/// `cert_pem_file` (with `key_pem_file` when the key is in a file of its
/// own); or `pkcs12_file` with `pkcs12_password` (WeChat's
/// `apiclient_cert.p12`, whose password is the `mch_id`).
///
/// Holds secrets (`pem`, `pkcs12_password`): never log it.
#[derive(Clone, uniffi::Record)]
pub struct ClientCert {
    /// A PEM file with the certificate (`apiclient_cert.pem`), and the key
    /// unless `key_pem_file` is given.
    #[uniffi(default = None)]
    pub cert_pem_file: Option<String>,
    /// A PEM file with the private key (`apiclient_key.pem`).
    #[uniffi(default = None)]
    pub key_pem_file: Option<String>,
    /// The certificate and private key as inline PEM text.
    #[uniffi(default = None)]
    pub pem: Option<String>,
    /// A PKCS#12 file (`apiclient_cert.p12`).
    #[uniffi(default = None)]
    pub pkcs12_file: Option<String>,
    /// The PKCS#12 password (the `mch_id` for WeChat's files).
    #[uniffi(default = None)]
    pub pkcs12_password: Option<String>,
}

/// Builds a JSON object from `(key, value)` pairs, leaving out `None`s so
/// the core applies its own defaults.
fn json_object<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_owned(), value?)))
            .collect(),
    )
}

/// Zeroizes every string inside `value` (the keys of a configuration
/// document that has been turned into text): overwritten, then emptied.
fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        _ => {}
    }
}

impl ClientCert {
    /// The core's `client_cert` object; `None` fields are left out.
    fn into_json(self) -> Value {
        json_object([
            ("cert_pem_file", self.cert_pem_file.map(Value::String)),
            ("key_pem_file", self.key_pem_file.map(Value::String)),
            ("pem", self.pem.map(Value::String)),
            ("pkcs12_file", self.pkcs12_file.map(Value::String)),
            ("pkcs12_password", self.pkcs12_password.map(Value::String)),
        ])
    }
}

impl Config {
    /// The core's JSON document for this record; `None` fields are left out,
    /// so the core applies its own defaults.
    fn into_json(self) -> Value {
        json_object([
            ("api", self.api.map(Value::String)),
            ("appid", Some(Value::String(self.appid))),
            ("notify_url", Some(Value::String(self.notify_url))),
            ("api_base", self.api_base.map(Value::String)),
            ("timeout_ms", self.timeout_ms.map(Value::from)),
            ("app_secret", self.app_secret.map(Value::String)),
            ("app_key", self.app_key.map(Value::String)),
            ("partner_id", self.partner_id.map(Value::String)),
            ("partner_key", self.partner_key.map(Value::String)),
            ("input_charset", self.input_charset.map(Value::String)),
            ("token_store", self.token_store.map(Value::String)),
            (
                "token_store_fallback",
                self.token_store_fallback.map(Value::Bool),
            ),
            ("mch_id", self.mch_id.map(Value::String)),
            ("api_key", self.api_key.map(Value::String)),
            ("sign_type", self.sign_type.map(Value::String)),
            ("client_cert", self.client_cert.map(ClientCert::into_json)),
            ("sandbox", self.sandbox.map(Value::Bool)),
            ("mchid", self.mchid.map(Value::String)),
            (
                "merchant_private_key",
                self.merchant_private_key.map(Value::String),
            ),
            (
                "merchant_private_key_file",
                self.merchant_private_key_file.map(Value::String),
            ),
            (
                "merchant_serial_no",
                self.merchant_serial_no.map(Value::String),
            ),
            ("api_v3_key", self.api_v3_key.map(Value::String)),
            (
                "wechatpay_public_key",
                self.wechatpay_public_key.map(Value::String),
            ),
            (
                "wechatpay_public_key_file",
                self.wechatpay_public_key_file.map(Value::String),
            ),
            (
                "wechatpay_public_key_id",
                self.wechatpay_public_key_id.map(Value::String),
            ),
            (
                "platform_cert_refresh_secs",
                self.platform_cert_refresh_secs.map(Value::from),
            ),
        ])
    }

    /// The core's validated configuration, parsed from this record's JSON.
    fn into_core(self) -> Result<crate::Config, WxPayError> {
        let mut doc = self.into_json();
        let text = Zeroizing::new(doc.to_string());
        // The keys were moved into the document: wipe them there too.
        wipe(&mut doc);
        Ok(crate::Config::from_json(&text)?)
    }
}

/// An order to pay; validated by `build_pay_params` before any network call.
///
/// The amount is exactly one of `total_fee` (integer fen) or `total_yuan` (a
/// decimal string of yuan with at most two decimals, e.g. `"19.99"`); there is
/// no floating point anywhere.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Order {
    /// The merchant's trade number (1 to 32 of `A-Z a-z 0-9 _ - | * @`).
    pub out_trade_no: String,
    /// The amount in fen, or `None` when `total_yuan` is given.
    #[uniffi(default = None)]
    pub total_fee: Option<u32>,
    /// The amount as a decimal string of yuan, or `None` when `total_fee` is given.
    #[uniffi(default = None)]
    pub total_yuan: Option<String>,
    /// The product description (at most 128 bytes of UTF-8).
    pub body: String,
    /// The paying phone's IPv4 address, dotted decimal.
    pub client_ip: String,
    /// Merchant data echoed in the payment notification (at most 127 bytes).
    #[uniffi(default = None)]
    pub attach: Option<String>,
    /// How long the order stays payable, 5 to 10080 minutes; default 20.
    #[uniffi(default = None)]
    pub expire_minutes: Option<u32>,
    /// The `traceid` sent with `genprepay`; default the `out_trade_no`.
    #[uniffi(default = None)]
    pub traceid: Option<String>,
}

impl Order {
    /// The core's JSON document for this record; `None` fields are left out.
    fn into_json(self) -> Value {
        let mut doc = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                doc.insert(key.to_owned(), value);
            }
        };
        put("out_trade_no", Some(Value::String(self.out_trade_no)));
        put("total_fee", self.total_fee.map(Value::from));
        put("total_yuan", self.total_yuan.map(Value::String));
        put("body", Some(Value::String(self.body)));
        put("client_ip", Some(Value::String(self.client_ip)));
        put("attach", self.attach.map(Value::String));
        put("expire_minutes", self.expire_minutes.map(Value::from));
        put("traceid", self.traceid.map(Value::String));
        Value::Object(doc)
    }

    /// The core's validated order, parsed from this record's JSON.
    fn into_core(self) -> Result<crate::Order, WxPayError> {
        Ok(crate::Order::from_json(&self.into_json().to_string())?)
    }
}

/// What the app hands to the WeChat SDK (`PayReq`), plus the order's number
/// and amount for the server's records.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PayParams {
    /// The app id.
    pub appid: String,
    /// The merchant number.
    pub partnerid: String,
    /// The prepay id from the gateway.
    pub prepayid: String,
    /// Always `Sign=WXPay` (Android's SDK calls it `packageValue`).
    pub package: String,
    /// The nonce the signature covers.
    pub noncestr: String,
    /// Unix seconds, as a string of 10 digits.
    pub timestamp: String,
    /// The SHA1 signature (40 lower-case hex digits).
    pub sign: String,
    /// The merchant's trade number (not sent to the SDK).
    pub out_trade_no: String,
    /// The amount in fen (not sent to the SDK).
    pub total_fee: u32,
}

impl From<crate::PayParams> for PayParams {
    fn from(p: crate::PayParams) -> Self {
        PayParams {
            appid: p.appid,
            partnerid: p.partnerid,
            prepayid: p.prepayid,
            package: p.package,
            noncestr: p.noncestr,
            timestamp: p.timestamp,
            sign: p.sign,
            out_trade_no: p.out_trade_no,
            total_fee: p.total_fee,
        }
    }
}

/// API v2: which order a query, close or refund is about.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum OrderRef {
    /// The merchant's trade number.
    OutTradeNo {
        /// E.g. `A1001`.
        value: String,
    },
    /// WeChat's transaction id (in the payment notification and `OrderStatus`).
    TransactionId {
        /// E.g. `4200000001202401011234567890`.
        value: String,
    },
}

impl From<OrderRef> for crate::model::OrderRef {
    fn from(order: OrderRef) -> Self {
        match order {
            OrderRef::OutTradeNo { value } => crate::model::OrderRef::OutTradeNo(value),
            OrderRef::TransactionId { value } => crate::model::OrderRef::TransactionId(value),
        }
    }
}

/// API v2: the state of an order, as `orderquery` reports it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: paid, then (partly) refunded.
    Refund,
    /// `NOTPAY`: not paid yet.
    Notpay,
    /// `CLOSED`: closed unpaid.
    Closed,
    /// `REVOKED`: revoked (card payments).
    Revoked,
    /// `USERPAYING`: the user is paying (entering a password).
    Userpaying,
    /// `PAYERROR`: the payment failed.
    Payerror,
    /// A state this library does not know.
    Other {
        /// The gateway's spelling, as sent.
        value: String,
    },
}

impl From<crate::model::TradeState> for TradeState {
    fn from(state: crate::model::TradeState) -> Self {
        use crate::model::TradeState as S;
        match state {
            S::Success => TradeState::Success,
            S::Refund => TradeState::Refund,
            S::Notpay => TradeState::Notpay,
            S::Closed => TradeState::Closed,
            S::Revoked => TradeState::Revoked,
            S::Userpaying => TradeState::Userpaying,
            S::Payerror => TradeState::Payerror,
            S::Other(value) => TradeState::Other { value },
        }
    }
}

/// API v2: an order's state, from `query_order`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OrderStatus {
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// WeChat's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// The state.
    pub trade_state: TradeState,
    /// The gateway's description of the state.
    pub trade_state_desc: Option<String>,
    /// The amount in fen, when the gateway reports it.
    pub total_fee: Option<u32>,
    /// When it was paid (`yyyyMMddHHmmss`, Beijing time).
    pub time_end: Option<String>,
}

impl From<crate::model::OrderStatus> for OrderStatus {
    fn from(s: crate::model::OrderStatus) -> Self {
        OrderStatus {
            out_trade_no: s.out_trade_no,
            transaction_id: s.transaction_id,
            trade_state: s.trade_state.into(),
            trade_state_desc: s.trade_state_desc,
            total_fee: s.total_fee,
            time_end: s.time_end,
        }
    }
}

/// API v2: a refund to request. The amounts and `out_refund_no` are checked
/// before any network call (`InvalidArgument`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundRequest {
    /// The order to refund.
    pub order: OrderRef,
    /// The merchant's refund number (1 to 64 of `A-Z a-z 0-9 _ - | * @`);
    /// the same number retried is not paid twice.
    pub out_refund_no: String,
    /// The order's total amount in fen.
    pub total_fee: u32,
    /// The amount to refund in fen (at most `total_fee`).
    pub refund_fee: u32,
    /// A reason shown to the user.
    #[uniffi(default = None)]
    pub refund_desc: Option<String>,
}

impl From<RefundRequest> for crate::model::RefundRequest {
    fn from(r: RefundRequest) -> Self {
        crate::model::RefundRequest {
            order: r.order.into(),
            out_refund_no: r.out_refund_no,
            total_fee: r.total_fee,
            refund_fee: r.refund_fee,
            refund_desc: r.refund_desc,
        }
    }
}

/// API v2: the gateway's receipt for a refund request.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundReceipt {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refunded amount in fen.
    pub refund_fee: u32,
}

impl From<crate::model::RefundReceipt> for RefundReceipt {
    fn from(r: crate::model::RefundReceipt) -> Self {
        RefundReceipt {
            out_refund_no: r.out_refund_no,
            refund_id: r.refund_id,
            refund_fee: r.refund_fee,
        }
    }
}

/// API v2: one refund of an order, from `query_refunds`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundStatus {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refunded amount in fen.
    pub refund_fee: u32,
    /// `SUCCESS`, `PROCESSING`, `REFUNDCLOSE` or `CHANGE`.
    pub refund_status: String,
}

impl From<crate::model::RefundStatus> for RefundStatus {
    fn from(r: crate::model::RefundStatus) -> Self {
        RefundStatus {
            out_refund_no: r.out_refund_no,
            refund_id: r.refund_id,
            refund_fee: r.refund_fee,
            refund_status: r.refund_status,
        }
    }
}

/// A verified payment notification (API v2, or the 2014 flow's query string).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentNotification {
    /// True when the payment succeeded; a verified failure is still
    /// acknowledged with the success reply.
    pub paid: bool,
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// WeChat's transaction id.
    pub transaction_id: String,
    /// The amount in fen.
    pub total_fee: u32,
    /// When the payment completed (`yyyyMMddHHmmss`), if given.
    pub time_end: Option<String>,
    /// The merchant's attached data, if any.
    pub attach: Option<String>,
    /// Every field of the message, verified.
    pub fields: HashMap<String, String>,
}

impl From<crate::model::PaymentNotification> for PaymentNotification {
    fn from(n: crate::model::PaymentNotification) -> Self {
        PaymentNotification {
            paid: n.paid,
            out_trade_no: n.out_trade_no,
            transaction_id: n.transaction_id,
            total_fee: n.total_fee,
            time_end: n.time_end,
            attach: n.attach,
            fields: n.fields.into_iter().collect(),
        }
    }
}

/// A verified (decrypted) API v2 refund notification.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefundNotification {
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The order's amount in fen.
    pub total_fee: u32,
    /// The refunded amount in fen.
    pub refund_fee: u32,
    /// `SUCCESS`, `CHANGE` or `REFUNDCLOSE`.
    pub refund_status: String,
    /// Every decrypted field.
    pub fields: HashMap<String, String>,
}

impl From<crate::model::RefundNotification> for RefundNotification {
    fn from(n: crate::model::RefundNotification) -> Self {
        RefundNotification {
            out_trade_no: n.out_trade_no,
            out_refund_no: n.out_refund_no,
            refund_id: n.refund_id,
            total_fee: n.total_fee,
            refund_fee: n.refund_fee,
            refund_status: n.refund_status,
            fields: n.fields.into_iter().collect(),
        }
    }
}

/// An expected amount given to a verifier: `None` stays `None`; zero (or
/// more than the gateway's maximum) is `InvalidArgument` naming `argument`.
fn expected_fen(argument: &str, fee: Option<u32>) -> Result<Option<crate::Fen>, WxPayError> {
    fee.map(|fee| {
        crate::Fen::new(i64::from(fee))
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

    /// Runs the whole flow for `order` (access_token, signed package,
    /// `genprepay`) and returns the signed parameters for the app.
    pub fn build_pay_params(&self, order: Order) -> Result<PayParams, WxPayError> {
        guard(|| {
            let order = order.into_core()?;
            Ok(self.inner.build_pay_params(&order)?.into())
        })
    }

    /// API v2 and v3: the state of an order (v2 `orderquery`).
    pub fn query_order(&self, order: OrderRef) -> Result<OrderStatus, WxPayError> {
        guard(|| Ok(self.inner.query_order(&order.into())?.into()))
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
        guard(|| Ok(self.inner.refund(&refund.into())?.into()))
    }

    /// API v2: the refunds of an order (`refundquery`); an order without
    /// refunds raises `Rejected` with code `REFUNDNOTEXIST`.
    pub fn query_refunds(&self, order: OrderRef) -> Result<Vec<RefundStatus>, WxPayError> {
        guard(|| {
            let refunds = self.inner.query_refunds(&order.into())?;
            Ok(refunds.into_iter().map(RefundStatus::from).collect())
        })
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
            Ok(self
                .inner
                .verify_payment_notification(&body, expected)?
                .into())
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
            Ok(self
                .inner
                .verify_refund_notification(&body, expected)?
                .into())
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
            let mut pairs: Vec<(String, String)> = Vec::with_capacity(headers.len());
            for (name, value) in headers {
                if pairs
                    .iter()
                    .any(|(seen, _)| seen.eq_ignore_ascii_case(&name))
                {
                    return Err(crate::Error::InvalidArgument(format!(
                        "headers: header {:?} appears more than once (names are case-insensitive)",
                        name.chars().take(40).collect::<String>()
                    ))
                    .into());
                }
                pairs.push((name, value));
            }
            Ok(self
                .inner
                .verify_signed_notification(&pairs, &body, expected)?
                .into())
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
pub fn sign(
    scheme: String,
    key: String,
    params: HashMap<String, String>,
) -> Result<String, WxPayError> {
    guard(|| {
        let key = crate::Secret::new(key);
        let scheme: crate::Scheme = scheme.parse()?;
        let fields: crate::crypto::sign::Fields = params.into_iter().collect();
        Ok(crate::crypto::sign::sign(scheme, &key, &fields)?.into_signature())
    })
}

#[cfg(test)]
mod tests {
    //! The glue only: record → core conversion, error mapping, the panic
    //! guard. The flow itself is tested in the core and `tests/flow.rs`.

    use super::*;
    use serde_json::json;

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

    fn v3_config() -> Config {
        Config {
            app_secret: None,
            app_key: None,
            partner_id: None,
            partner_key: None,
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
            ..config()
        }
    }

    fn v2_config() -> Config {
        Config {
            app_secret: None,
            app_key: None,
            partner_id: None,
            partner_key: None,
            api: Some("v2".into()),
            mch_id: Some("10000100".into()),
            api_key: Some("192006250b4c09247ec02edce69f6a2d".into()),
            ..config()
        }
    }

    fn no_cert() -> ClientCert {
        ClientCert {
            cert_pem_file: None,
            key_pem_file: None,
            pem: None,
            pkcs12_file: None,
            pkcs12_password: None,
        }
    }

    fn order() -> Order {
        Order {
            out_trade_no: "A1".into(),
            total_fee: None,
            total_yuan: Some("19.99".into()),
            body: "b".into(),
            client_ip: "1.2.3.4".into(),
            attach: None,
            expire_minutes: None,
            traceid: None,
        }
    }

    #[test]
    fn config_json_leaves_out_none_and_carries_every_option() {
        assert_eq!(
            config().into_json(),
            json!({
                "appid": "wxd930ea5d5a258f4f", "app_secret": "s", "app_key": "k",
                "partner_id": "1900000109", "partner_key": "p",
                "notify_url": "https://example.com/notify",
            })
        );
        let full = Config {
            api_base: Some("http://127.0.0.1:9".into()),
            input_charset: Some("GBK".into()),
            timeout_ms: Some(1234),
            token_store: Some("memory".into()),
            token_store_fallback: Some(true),
            ..config()
        };
        let doc = full.clone().into_json();
        assert_eq!(doc["api_base"], "http://127.0.0.1:9");
        assert_eq!(doc["input_charset"], "GBK");
        assert_eq!(doc["timeout_ms"], 1234);
        assert_eq!(doc["token_store"], "memory");
        assert_eq!(doc["token_store_fallback"], true);
        // Both documents are configurations the core accepts.
        config().into_core().expect("minimal config is valid");
        full.into_core().expect("full config is valid");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = Config {
            api_base: Some("http://10.0.0.1".into()),
            ..config()
        }
        .into_core()
        .err();
        assert!(
            matches!(&err, Some(WxPayError::InvalidConfig { field, message })
                if field == "api_base" && message.starts_with("invalid config: api_base:")),
            "{err:?}"
        );
        let err = WxPayClient::new(Config {
            partner_key: Some(String::new()),
            ..config()
        })
        .err();
        assert!(
            matches!(&err, Some(WxPayError::InvalidConfig { field, .. }) if field == "partner_key"),
            "{err:?}"
        );
    }

    #[test]
    fn order_json_keeps_money_exact_and_reaches_the_core() {
        assert_eq!(
            order().into_json(),
            json!({"out_trade_no": "A1", "total_yuan": "19.99", "body": "b", "client_ip": "1.2.3.4"})
        );
        assert_eq!(order().into_core().expect("valid").total_fee().get(), 1999);
        let full = Order {
            total_fee: Some(7),
            total_yuan: None,
            attach: Some("a".into()),
            expire_minutes: Some(30),
            traceid: Some("T-1".into()),
            ..order()
        };
        assert_eq!(
            full.clone().into_json(),
            json!({"out_trade_no": "A1", "total_fee": 7, "body": "b", "client_ip": "1.2.3.4",
                   "attach": "a", "expire_minutes": 30, "traceid": "T-1"})
        );
        let core = full.into_core().expect("valid");
        assert_eq!(core.total_fee().get(), 7);
        assert_eq!(core.traceid(), "T-1");
    }

    #[test]
    fn order_errors_name_the_field() {
        for (fee, yuan, field) in [
            (None, Some("0.001"), "total_yuan"),
            (None, Some("0"), "total_yuan"),
            (Some(0), None, "total_fee"),
            (None, None, "total_fee"),
            (Some(1), Some("0.01"), "total_fee"),
        ] {
            let err = Order {
                total_fee: fee,
                total_yuan: yuan.map(str::to_owned),
                ..order()
            }
            .into_core()
            .err();
            assert!(
                matches!(&err, Some(WxPayError::InvalidOrder { field: f, .. }) if f == field),
                "{fee:?} {yuan:?}: {err:?}"
            );
        }
    }

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
    fn sign_parses_the_scheme_and_signs() {
        // The public package vector of PROTOCOL.md 1.2 (also in sign.rs).
        let params: HashMap<String, String> = [
            ("bank_type", "WX"),
            ("body", "支付测试"),
            ("fee_type", "1"),
            ("input_charset", "UTF-8"),
            ("notify_url", "http://weixin.qq.com"),
            ("out_trade_no", "7240b65810859cbf2a8d9f76a638c0a3"),
            ("partner", "1900000109"),
            ("spbill_create_ip", "196.168.1.1"),
            ("total_fee", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
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

    #[test]
    fn v2_config_json_carries_every_v2_key() {
        assert_eq!(
            v2_config().into_json(),
            json!({
                "api": "v2", "appid": "wxd930ea5d5a258f4f",
                "notify_url": "https://example.com/notify",
                "mch_id": "10000100", "api_key": "192006250b4c09247ec02edce69f6a2d",
            })
        );
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let full = Config {
            sign_type: Some("HMAC-SHA256".into()),
            sandbox: Some(true),
            client_cert: Some(ClientCert {
                cert_pem_file: Some(format!("{fixtures}/apiclient_cert.pem")),
                key_pem_file: Some(format!("{fixtures}/apiclient_key.pem")),
                ..no_cert()
            }),
            ..v2_config()
        };
        let doc = full.clone().into_json();
        assert_eq!(doc["sign_type"], "HMAC-SHA256");
        assert_eq!(doc["sandbox"], true);
        assert_eq!(
            doc["client_cert"],
            json!({"cert_pem_file": format!("{fixtures}/apiclient_cert.pem"),
                   "key_pem_file": format!("{fixtures}/apiclient_key.pem")})
        );
        let core = full.into_core().expect("full v2 config is valid");
        assert_eq!(core.api, crate::config::Api::V2);
        assert!(core.sandbox);
        // The certificate is read when the client is built: PKCS#12 too.
        WxPayClient::new(Config {
            client_cert: Some(ClientCert {
                pkcs12_file: Some(format!("{fixtures}/apiclient_cert.p12")),
                pkcs12_password: Some("10000100".into()),
                ..no_cert()
            }),
            ..v2_config()
        })
        .expect("client with a PKCS#12 certificate");
    }

    #[test]
    fn v2_config_errors_name_the_field() {
        let field_of = |config: Config| match WxPayClient::new(config).err() {
            Some(WxPayError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(
            field_of(Config {
                api_key: None,
                ..v2_config()
            }),
            "api_key"
        );
        assert_eq!(
            field_of(Config {
                mch_id: None,
                ..v2_config()
            }),
            "mch_id"
        );
        // Without `api`, the 2014 keys are required.
        assert_eq!(
            field_of(Config {
                api: None,
                ..v2_config()
            }),
            "app_secret"
        );
        assert_eq!(
            field_of(Config {
                sign_type: Some("SHA1".into()),
                ..v2_config()
            }),
            "sign_type"
        );
        assert_eq!(
            field_of(Config {
                api: Some("v9".into()),
                ..v2_config()
            }),
            "api"
        );
        assert_eq!(
            field_of(Config {
                client_cert: Some(no_cert()),
                ..v2_config()
            }),
            "client_cert"
        );
        let err = WxPayClient::new(Config {
            client_cert: Some(ClientCert {
                pkcs12_file: Some("/nonexistent/apiclient_cert.p12".into()),
                pkcs12_password: Some("SECRET-PASSWORD".into()),
                ..no_cert()
            }),
            ..v2_config()
        })
        .err();
        assert!(
            matches!(&err, Some(WxPayError::InvalidConfig { field, message })
                if field == "client_cert.pkcs12_file" && !message.contains("SECRET")),
            "{err:?}"
        );
    }

    #[test]
    fn wipe_zeroizes_nested_strings() {
        let mut doc = json!({"api_key": "abc", "client_cert": {"pem": "xyz"}, "sandbox": true});
        wipe(&mut doc);
        assert_eq!(
            doc,
            json!({"api_key": "", "client_cert": {"pem": ""}, "sandbox": true})
        );
    }

    #[test]
    fn v2_records_convert_field_for_field() {
        use crate::model as core;
        for (state, expected) in [
            (core::TradeState::Success, TradeState::Success),
            (core::TradeState::Refund, TradeState::Refund),
            (core::TradeState::Notpay, TradeState::Notpay),
            (core::TradeState::Closed, TradeState::Closed),
            (core::TradeState::Revoked, TradeState::Revoked),
            (core::TradeState::Userpaying, TradeState::Userpaying),
            (core::TradeState::Payerror, TradeState::Payerror),
            (
                core::TradeState::Other("ACCEPT".into()),
                TradeState::Other {
                    value: "ACCEPT".into(),
                },
            ),
        ] {
            assert_eq!(TradeState::from(state), expected);
        }
        let status = OrderStatus::from(core::OrderStatus {
            out_trade_no: "A1".into(),
            transaction_id: Some("42".into()),
            trade_state: core::TradeState::Success,
            trade_state_desc: Some("paid".into()),
            total_fee: Some(1999),
            time_end: Some("20240101120000".into()),
        });
        assert_eq!(
            status,
            OrderStatus {
                out_trade_no: "A1".into(),
                transaction_id: Some("42".into()),
                trade_state: TradeState::Success,
                trade_state_desc: Some("paid".into()),
                total_fee: Some(1999),
                time_end: Some("20240101120000".into()),
            }
        );
        let request = crate::model::RefundRequest::from(RefundRequest {
            order: OrderRef::TransactionId { value: "42".into() },
            out_refund_no: "R1".into(),
            total_fee: 1999,
            refund_fee: 999,
            refund_desc: Some("d".into()),
        });
        assert_eq!(
            request,
            core::RefundRequest {
                order: core::OrderRef::TransactionId("42".into()),
                out_refund_no: "R1".into(),
                total_fee: 1999,
                refund_fee: 999,
                refund_desc: Some("d".into()),
            }
        );
        assert_eq!(
            core::OrderRef::from(OrderRef::OutTradeNo { value: "A1".into() }),
            core::OrderRef::OutTradeNo("A1".into())
        );
        let receipt = RefundReceipt::from(core::RefundReceipt {
            out_refund_no: "R1".into(),
            refund_id: "50".into(),
            refund_fee: 999,
        });
        assert_eq!(
            (
                receipt.out_refund_no.as_str(),
                receipt.refund_id.as_str(),
                receipt.refund_fee
            ),
            ("R1", "50", 999)
        );
        let refund = RefundStatus::from(core::RefundStatus {
            out_refund_no: "R1".into(),
            refund_id: "50".into(),
            refund_fee: 999,
            refund_status: "SUCCESS".into(),
        });
        assert_eq!(refund.refund_status, "SUCCESS");
        let fields: crate::crypto::sign::Fields =
            [("refund_status", "SUCCESS"), ("refund_fee", "999")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let notified = RefundNotification::from(crate::model::RefundNotification {
            out_trade_no: "A1".into(),
            out_refund_no: "R1".into(),
            refund_id: "50".into(),
            total_fee: 1999,
            refund_fee: 999,
            refund_status: "SUCCESS".into(),
            fields: fields.clone(),
        });
        assert_eq!(notified.fields, fields.into_iter().collect());
        assert_eq!((notified.total_fee, notified.refund_fee), (1999, 999));
    }

    /// An API v2 payment notification for `v2_config()`, signed with its key.
    fn v2_notification(total_fee: &str) -> Vec<u8> {
        let mut fields: crate::crypto::sign::Fields = [
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
        let order = || OrderRef::OutTradeNo { value: "A1".into() };
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

    #[test]
    fn v3_config_reaches_the_core_and_signed_notifications_check_their_headers() {
        let doc = v3_config().into_json();
        for key in [
            "mchid",
            "merchant_private_key",
            "merchant_serial_no",
            "api_v3_key",
            "wechatpay_public_key",
            "wechatpay_public_key_id",
        ] {
            assert!(doc.get(key).is_some(), "{key} missing from {doc}");
        }
        let with_refresh = Config {
            wechatpay_public_key: None,
            wechatpay_public_key_id: None,
            platform_cert_refresh_secs: Some(600),
            ..v3_config()
        };
        assert_eq!(with_refresh.into_json()["platform_cert_refresh_secs"], 600);

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
}
