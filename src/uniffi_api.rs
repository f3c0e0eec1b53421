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
//! | Rust            | Kotlin (`com.wxpay`)           | Swift (`WxPay`)                | Python (`wxpay`)            |
//! |-----------------|--------------------------------|--------------------------------|-----------------------------|
//! | [`WxPayClient`] | `WxPayClient(config)`          | `try WxPayClient(config:)`     | `WxPayClient(config)`       |
//! | [`WxPayError`]  | `WxPayException.InvalidOrder`… | `WxPayError.InvalidOrder`…     | `WxPayError.InvalidOrder`…  |
//! | [`sign`]        | `sign(scheme, key, params)`    | `try sign(scheme:key:params:)` | `sign(scheme, key, params)` |
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
    /// API v2 refused the request with a code of its own.
    #[error("{message}")]
    Rejected {
        /// The code (e.g. `ORDERPAID`, `NOTENOUGH`, or `FAIL`).
        code: String,
        /// The gateway's description of the code, as sent.
        description: String,
        /// The whole message, e.g. `gateway refused the request: ...`.
        message: String,
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
            } => WxPayError::Rejected {
                code,
                description,
                message,
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
/// Holds secrets: never log it (Kotlin's `toString`, Python's `str` and
/// Swift's `String(describing:)` print every field).
#[derive(Clone, uniffi::Record)]
pub struct Config {
    /// The app's id on the WeChat open platform (`wx...`).
    pub appid: String,
    /// The app secret; used only to fetch an access_token.
    pub app_secret: String,
    /// The 128-character `paySignKey`; used only inside SHA1 signatures.
    pub app_key: String,
    /// The Tenpay merchant number (`partner`).
    pub partner_id: String,
    /// The merchant key of the package MD5 signature.
    pub partner_key: String,
    /// Where WeChat posts the asynchronous payment result.
    pub notify_url: String,
    /// The gateway base URL; default `https://api.weixin.qq.com`.
    #[uniffi(default = None)]
    pub api_base: Option<String>,
    /// `UTF-8` (the default) or `GBK`.
    #[uniffi(default = None)]
    pub input_charset: Option<String>,
    /// The total timeout of one HTTP exchange in milliseconds; default 10000.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Where the access_token lives: `memory` (the default) or
    /// `redis://HOST:PORT/DB` (needs a build with the `redis` feature).
    #[uniffi(default = None)]
    pub token_store: Option<String>,
    /// Keep working with this process's own token when the shared store is
    /// unreachable, instead of failing; default false.
    #[uniffi(default = None)]
    pub token_store_fallback: Option<bool>,
}

impl Config {
    /// The core's JSON document for this record; `None` fields are left out,
    /// so the core applies its own defaults.
    fn into_json(self) -> Value {
        let mut doc = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                doc.insert(key.to_owned(), value);
            }
        };
        put("appid", Some(Value::String(self.appid)));
        put("app_secret", Some(Value::String(self.app_secret)));
        put("app_key", Some(Value::String(self.app_key)));
        put("partner_id", Some(Value::String(self.partner_id)));
        put("partner_key", Some(Value::String(self.partner_key)));
        put("notify_url", Some(Value::String(self.notify_url)));
        put("api_base", self.api_base.map(Value::String));
        put("input_charset", self.input_charset.map(Value::String));
        put("timeout_ms", self.timeout_ms.map(Value::from));
        put("token_store", self.token_store.map(Value::String));
        put(
            "token_store_fallback",
            self.token_store_fallback.map(Value::Bool),
        );
        Value::Object(doc)
    }

    /// The core's validated configuration, parsed from this record's JSON.
    fn into_core(self) -> Result<crate::Config, WxPayError> {
        let mut doc = self.into_json();
        let text = Zeroizing::new(doc.to_string());
        // The keys were moved into the document: wipe them there too.
        if let Value::Object(map) = &mut doc {
            for value in map.values_mut() {
                if let Value::String(s) = value {
                    s.zeroize();
                }
            }
        }
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
        let fields: crate::sign::Fields = params.into_iter().collect();
        Ok(crate::sign::sign(scheme, &key, &fields)?.into_signature())
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
            app_secret: "s".into(),
            app_key: "k".into(),
            partner_id: "1900000109".into(),
            partner_key: "p".into(),
            notify_url: "https://example.com/notify".into(),
            api_base: None,
            input_charset: None,
            timeout_ms: None,
            token_store: None,
            token_store_fallback: None,
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
            partner_key: String::new(),
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
        }
        .into();
        assert!(
            matches!(&rejected, WxPayError::Rejected { code, description, message }
                if code == "ORDERPAID" && description == "order paid" && message.contains("ORDERPAID")),
            "{rejected:?}"
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
