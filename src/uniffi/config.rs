//! The bindings' [`Config`]: a record of typed, optional fields, one per key
//! of the core's JSON configuration.
//!
//! It is the one binding type that is not a core type: the core's
//! [`crate::Config`] is what a configuration becomes once parsed (enums,
//! defaults filled in, paths and keys checked), while a host writes the
//! document itself, with `None` for "the default". So the record is turned
//! into that JSON document by serde (its field names are the keys) and read
//! by [`crate::Config::from_json`]: defaults, checks and error messages are
//! the core's, written once. The client certificate inside it is the core's
//! own [`crate::config::ClientCertConfig`] (`ClientCert` in the bindings).

use std::path::PathBuf;

use serde::Serialize;
use zeroize::Zeroizing;

use super::WxPayError;
use crate::config::ClientCertConfig;
use crate::util::secret::{serialize_exposed, Secret};

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
    /// Where WeChat posts the asynchronous payment result.
    pub notify_url: String,
    /// API v2 and v3: where WeChat posts refund results (sent with every
    /// refund request); default: the URL set on the merchant platform.
    #[uniffi(default = None)]
    pub refund_notify_url: Option<String>,
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
    /// The proxy every HTTP request goes through (`http://HOST:PORT` or
    /// `https://HOST:PORT`, with `user:password@` for basic authentication);
    /// default: the environment's `HTTPS_PROXY` / `NO_PROXY`.
    #[uniffi(default = None)]
    pub proxy: Option<String>,
    /// 2014 flow: where the access_token lives: `memory` (the default) or
    /// `redis://HOST:PORT/DB` (`rediss://` for TLS; needs a build with the
    /// `redis` feature).
    #[uniffi(default = None)]
    pub token_store: Option<String>,
    /// 2014 flow: keep working with this process's own token when the shared
    /// store is unreachable, instead of failing; default false.
    #[uniffi(default = None)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_store_fallback: Option<bool>,
    /// 2014 flow, with a `rediss://` token store: a PEM file of the CA that
    /// signed the Redis server's certificate (default: the webpki roots).
    #[uniffi(default = None)]
    pub token_store_ca_file: Option<PathBuf>,
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
    /// API v3: after a certificate download, how long a serial that is still
    /// unknown is refused without downloading again, in seconds (default 60).
    #[uniffi(default = None)]
    pub platform_cert_min_interval_secs: Option<u64>,
}

impl Config {
    /// The core's validated configuration: this record as the core's JSON
    /// document (kept in zeroized memory), parsed by
    /// [`crate::Config::from_json`].
    pub(super) fn into_core(self) -> Result<crate::Config, WxPayError> {
        let text = Zeroizing::new(
            serde_json::to_string(&self)
                .map_err(|e| crate::Error::config("config", e.to_string()))?,
        );
        Ok(crate::Config::from_json(&text)?)
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The record → core conversion. `config()`, `v2_config()` and
    //! `v3_config()` serve the client's tests too.

    use super::*;
    use crate::config::Api;
    use serde_json::json;

    /// A 2014-flow configuration with every optional field `None`.
    pub(in crate::uniffi) fn config() -> Config {
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
            token_store_ca_file: None,
            proxy: None,
            refund_notify_url: None,
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
            platform_cert_min_interval_secs: None,
        }
    }

    /// An API v3 merchant in public-key mode, with the sandbox's keys and a
    /// gateway nothing listens on.
    pub(in crate::uniffi) fn v3_config() -> Config {
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
    pub(in crate::uniffi) fn v2_config() -> Config {
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

    /// A client certificate with nothing given.
    pub(in crate::uniffi) fn no_cert() -> ClientCertConfig {
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
        assert_eq!(doc.as_object().map(|m| m.len()), Some(30), "{doc}");
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
        assert_eq!(with(|c| c.api = Some("v9".into())), "api");
        let v2 = |change: fn(&mut Config)| {
            let mut config = v2_config();
            change(&mut config);
            field_of(config)
        };
        assert_eq!(v2(|c| c.api_key = None), "api_key");
        assert_eq!(v2(|c| c.mch_id = None), "mch_id");
        assert_eq!(v2(|c| c.sign_type = Some("SHA1".into())), "sign_type");
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
}
