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
//! The one binding-only record is [`Config`] (see [`config`]).
//!
//! - [`error`]: [`WxPayError`], mapped from [`crate::Error`], and [`guard`],
//!   inside which every export runs, so that no panic reaches a host;
//! - [`config`]: the [`Config`] record and its way to the core's parser;
//! - [`client`]: the [`WxPayClient`] object;
//! - here: the free function [`sign`].
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
//!
//! [`WxPayClient`]: client::WxPayClient

mod client;
mod config;
mod error;

pub use config::Config;
pub use error::WxPayError;

use error::guard;

use crate::crypto::sign::Fields;
use crate::Secret;

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
    use super::*;

    #[test]
    fn sign_parses_the_scheme_and_signs() {
        // The public package vector of PROTOCOL.md 1.2.
        let params = crate::test_vectors::public_package_fields();
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
