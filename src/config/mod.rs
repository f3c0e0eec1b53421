//! A merchant's configuration: which API generation, ids, secrets, where the
//! gateway is, and limits.
//!
//! Read from JSON (unknown keys are an error, so a typo never silently drops a
//! setting) and validated once, when a client is built: each generation
//! requires its own keys, and [`Config::legacy_merchant`] /
//! [`Config::v2_merchant`] turn them into typed credentials. `Debug` redacts
//! every secret.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

use crate::crypto::sign::SignType;
use crate::error::{Error, Result};
use crate::util::charset::Charset;
use crate::util::secret::Secret;

mod client_cert;
mod merchants;

pub use client_cert::ClientCertConfig;
pub use merchants::{
    DEFAULT_PLATFORM_CERT_MIN_INTERVAL_SECS, MAX_PLATFORM_CERT_MIN_INTERVAL_SECS,
    MAX_PLATFORM_CERT_REFRESH_SECS,
};

/// The production gateway of the 2014 APP flow.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// The production gateway of API v2.
pub const DEFAULT_V2_API_BASE: &str = "https://api.mch.weixin.qq.com";

/// The total timeout of one HTTP exchange when the config sets none.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The generation of WeChat Pay's API a merchant uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The 2014 APP flow: access_token, package, `genprepay` (the default, so
    /// configurations written before API v2 support keep working).
    #[default]
    Legacy,
    /// API v2: signed XML (`unifiedorder`, query, close, refund).
    V2,
    /// API v3: RSA-signed JSON (the current API).
    V3,
}

impl Api {
    /// The name the configuration uses (`legacy`, `v2`).
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Legacy => "legacy",
            Api::V2 => "v2",
            Api::V3 => "v3",
        }
    }
}

/// A merchant's configuration.
///
/// JSON keys are the field names. Common keys: `api` (`legacy` by default),
/// `appid`, `notify_url`, and the optional `api_base`, `timeout_ms`, `proxy`,
/// `token_store`, `token_store_fallback`. The 2014 flow needs `app_secret`,
/// `app_key`, `partner_id`, `partner_key` (and takes `input_charset`); API v2
/// needs `mch_id` and `api_key` (and takes `sign_type`, `client_cert`,
/// `sandbox`); API v3 needs `mchid`, `merchant_private_key(_file)`,
/// `merchant_serial_no`, `api_v3_key`, and either `wechatpay_public_key(_file)`
/// with `wechatpay_public_key_id` or nothing more (platform certificates
/// are then downloaded).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which API generation to speak.
    #[serde(default)]
    pub api: Api,
    /// The app's id on the WeChat open platform (`wx...`).
    pub appid: String,
    /// Where WeChat posts the asynchronous payment result (at most 255 bytes).
    pub notify_url: String,
    /// API v2 and v3: where WeChat posts refund results, sent as the
    /// `notify_url` of every refund request. Without it refund requests name
    /// no URL and the one set on the merchant platform applies (never the
    /// payment `notify_url`, whose handler cannot verify a refund).
    #[serde(default)]
    pub refund_notify_url: Option<String>,
    /// The gateway base URL (default: the generation's production gateway);
    /// `https://` unless the host is a loopback address.
    #[serde(default)]
    pub api_base: Option<String>,
    /// The total timeout of one HTTP exchange, in milliseconds (also the
    /// bound on each exchange with a shared token store).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Where the access_token lives (2014 flow): `memory` (the default: in
    /// this client) or `redis://HOST:PORT/DB` (`rediss://` for TLS), shared
    /// by every process of the merchant; needs the `redis` cargo feature.
    #[serde(default)]
    pub token_store: Option<String>,
    /// When the shared token store cannot be reached, keep working with this
    /// process's own token and log a warning, instead of failing the call.
    #[serde(default)]
    pub token_store_fallback: bool,
    /// With a `rediss://` token store: a PEM file of the CA that signed the
    /// Redis server's certificate (default: the webpki roots).
    #[serde(default)]
    pub token_store_ca_file: Option<PathBuf>,
    /// The proxy every HTTP request goes through: `http://HOST:PORT` or
    /// `https://HOST:PORT`, with `user:password@` for basic authentication.
    /// Hosts named in the `NO_PROXY` environment variable are still reached
    /// directly. Without it, the environment's `HTTPS_PROXY` (for an
    /// `https://` gateway), `HTTP_PROXY` (for a plain-http loopback one),
    /// `ALL_PROXY` and `NO_PROXY` apply, as reqwest reads them (see
    /// [`crate::http::HttpTransport`]).
    #[serde(default)]
    pub proxy: Option<String>,

    /// 2014 flow: the app secret; used only to fetch an access_token.
    #[serde(default)]
    pub app_secret: Option<Secret>,
    /// 2014 flow: the 128-character `paySignKey`; used only inside SHA1
    /// signatures, never sent.
    #[serde(default)]
    pub app_key: Option<Secret>,
    /// 2014 flow: the Tenpay merchant number (`partner`).
    #[serde(default)]
    pub partner_id: Option<String>,
    /// 2014 flow: the merchant key of the package MD5 signature.
    #[serde(default)]
    pub partner_key: Option<Secret>,
    /// 2014 flow: the charset the package is hashed and percent-encoded in.
    #[serde(default)]
    pub input_charset: Charset,

    /// API v2: the merchant id.
    #[serde(default)]
    pub mch_id: Option<String>,
    /// API v2: the 32-character API key of every signature.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// API v2: `MD5` (default) or `HMAC-SHA256`.
    #[serde(default)]
    pub sign_type: SignType,
    /// API v2: the client certificate for refunds.
    #[serde(default)]
    pub client_cert: Option<ClientCertConfig>,
    /// API v2: use WeChat's own simulation environment (`sandboxnew/` paths,
    /// signed with a key fetched from `sandboxnew/pay/getsignkey`).
    #[serde(default)]
    pub sandbox: bool,

    /// API v3: the merchant id.
    #[serde(default)]
    pub mchid: Option<String>,
    /// API v3: the merchant's RSA private key as PEM text (PKCS#8 or PKCS#1).
    #[serde(default)]
    pub merchant_private_key: Option<Secret>,
    /// API v3: a file holding that key (`apiclient_key.pem`).
    #[serde(default)]
    pub merchant_private_key_file: Option<PathBuf>,
    /// API v3: the serial number of the merchant's certificate.
    #[serde(default)]
    pub merchant_serial_no: Option<String>,
    /// API v3: the API v3 key (exactly 32 bytes).
    #[serde(default)]
    pub api_v3_key: Option<Secret>,
    /// API v3, public-key mode: WeChat Pay's public key as PEM text.
    #[serde(default)]
    pub wechatpay_public_key: Option<String>,
    /// API v3, public-key mode: a file holding that key.
    #[serde(default)]
    pub wechatpay_public_key_file: Option<PathBuf>,
    /// API v3, public-key mode: the key's id (`PUB_KEY_ID_...`).
    #[serde(default)]
    pub wechatpay_public_key_id: Option<String>,
    /// API v3, certificate mode (no public key given): how often the
    /// platform certificates are downloaded again, in seconds (default 12 h;
    /// 60 s to 30 days, a value outside taken as the nearest bound).
    #[serde(default)]
    pub platform_cert_refresh_secs: Option<u64>,
    /// API v3: after a download of the platform certificates, how long an
    /// answer or notification signed with a serial that is still unknown is
    /// refused without downloading them again, in seconds (default 60, at
    /// most a day). Forged notifications cannot make a client download on
    /// every request.
    #[serde(default)]
    pub platform_cert_min_interval_secs: Option<u64>,
}

/// Where a client keeps its access_token, as the configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStoreSetting {
    /// In the client's memory.
    Memory,
    /// In Redis at this URL.
    Redis(String),
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl Config {
    /// Parses and validates a JSON configuration.
    pub fn from_json(json: &str) -> Result<Config> {
        let map = crate::util::json::unique_object(json, "config", |reason| {
            Error::config("config", reason)
        })?;
        let config: Config = serde_path_to_error::deserialize(serde_json::Value::Object(map))
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "config".to_owned()
                } else {
                    field
                };
                Error::config(&field, without_values(&e.into_inner().to_string()))
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; [`crate::Client::new`] calls this.
    pub fn validate(&self) -> Result<()> {
        require_non_empty("appid", &self.appid)?;
        self.check_notify_url("notify_url", &self.notify_url)?;
        if let Some(url) = &self.refund_notify_url {
            self.check_notify_url("refund_notify_url", url)?;
        }
        self.api_base_url()?;
        self.token_store_setting()?;
        self.proxy_url()?;
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            return Err(Error::config(
                "timeout_ms",
                "must be between 1 and 300000 milliseconds",
            ));
        }
        match self.api {
            Api::Legacy => self.legacy_merchant().map(drop),
            Api::V2 => self.v2_merchant().map(drop),
            Api::V3 => self.v3_merchant().map(drop),
        }
    }

    /// The parsed `api_base`, checked: `https://`, or `http://` for a loopback
    /// host only (`127.0.0.0/8`, `localhost`, `[::1]`).
    pub fn api_base_url(&self) -> Result<Url> {
        let text = self.api_base.as_deref().unwrap_or(match self.api {
            Api::Legacy => DEFAULT_API_BASE,
            Api::V2 | Api::V3 => DEFAULT_V2_API_BASE,
        });
        let url = Url::parse(text)
            .map_err(|e| Error::config("api_base", format!("is not a URL ({e})")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(
                "api_base",
                "must not have a query or fragment",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config("api_base", "must not carry credentials"));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if is_loopback(&url) => Ok(url),
            "http" => Err(Error::config(
                "api_base",
                "plain http is allowed only for loopback hosts (127.0.0.0/8, localhost, [::1]); use https",
            )),
            _ => Err(Error::config("api_base", "must be an https URL")),
        }
    }

    /// The parsed `proxy`, checked: `http://` or `https://`, a host, and
    /// nothing after the port. No error repeats it (it may hold a password).
    pub fn proxy_url(&self) -> Result<Option<Url>> {
        let Some(text) = self.proxy.as_deref() else {
            return Ok(None);
        };
        let url =
            Url::parse(text).map_err(|e| Error::config("proxy", format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config("proxy", "must be an http:// or https:// URL"));
        }
        if url.host().is_none()
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(Error::config(
                "proxy",
                "must be a scheme, a host and a port (and credentials), nothing more",
            ));
        }
        Ok(Some(url))
    }

    /// Checks a notification URL: at most 255 bytes, http or https, and
    /// https for API v3 unless on loopback.
    fn check_notify_url(&self, field: &str, url: &str) -> Result<()> {
        if url.len() > 255 {
            return Err(Error::config(field, "is longer than 255 bytes"));
        }
        let notify =
            Url::parse(url).map_err(|e| Error::config(field, format!("is not a URL ({e})")))?;
        if !matches!(notify.scheme(), "http" | "https") {
            return Err(Error::config(field, "must be an http or https URL"));
        }
        if self.api == Api::V3 && notify.scheme() == "http" && !is_loopback(&notify) {
            return Err(Error::config(
                field,
                "API v3 posts notifications to https URLs only (plain http is allowed for loopback hosts)",
            ));
        }
        Ok(())
    }

    /// The parsed `token_store`.
    pub fn token_store_setting(&self) -> Result<TokenStoreSetting> {
        match self.token_store.as_deref() {
            None | Some("memory") => Ok(TokenStoreSetting::Memory),
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Url::parse(url)
                    .map_err(|e| Error::config("token_store", format!("is not a URL ({e})")))?;
                if cfg!(feature = "redis") {
                    Ok(TokenStoreSetting::Redis(url.to_owned()))
                } else {
                    Err(Error::config(
                        "token_store",
                        "this build of libwxpay has no Redis support (cargo feature `redis`)",
                    ))
                }
            }
            Some(_) => Err(Error::config(
                "token_store",
                "must be \"memory\" or a redis:// or rediss://HOST:PORT/DB URL",
            )),
        }
    }

    /// The total timeout of one HTTP exchange.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A serde error message without the value it quotes: `invalid type:
/// string "-----BEGIN...", expected struct ClientCertConfig` names a key the
/// operator pasted in the wrong place. What was expected, and the names of
/// unknown or missing fields, stay.
fn without_values(message: &str) -> String {
    for kind in [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
    ] {
        if let Some(rest) = message.strip_prefix(kind) {
            return match rest.rfind(", expected ") {
                Some(at) => format!("{kind}{}", &rest[at..]),
                None => kind.to_owned(),
            };
        }
    }
    message.to_owned()
}

fn require_non_empty(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(Error::config(field, "must not be empty"))
    } else {
        Ok(())
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        None => false,
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api", &self.api)
            .field("appid", &self.appid)
            .field("notify_url", &self.notify_url)
            .field("refund_notify_url", &self.refund_notify_url)
            .field("api_base", &self.api_base)
            .field("timeout_ms", &self.timeout_ms)
            .field(
                "token_store",
                &self.token_store.as_deref().map(redact_url_password),
            )
            .field("token_store_fallback", &self.token_store_fallback)
            .field("token_store_ca_file", &self.token_store_ca_file)
            .field("proxy", &self.proxy.as_deref().map(redact_url_password))
            .field("app_secret", &self.app_secret)
            .field("app_key", &self.app_key)
            .field("partner_id", &self.partner_id)
            .field("partner_key", &self.partner_key)
            .field("input_charset", &self.input_charset)
            .field("mch_id", &self.mch_id)
            .field("api_key", &self.api_key)
            .field("sign_type", &self.sign_type)
            .field("client_cert", &self.client_cert)
            .field("sandbox", &self.sandbox)
            .field("mchid", &self.mchid)
            .field("merchant_private_key", &self.merchant_private_key)
            .field("merchant_private_key_file", &self.merchant_private_key_file)
            .field("merchant_serial_no", &self.merchant_serial_no)
            .field("api_v3_key", &self.api_v3_key)
            .field("wechatpay_public_key_id", &self.wechatpay_public_key_id)
            .field(
                "platform_cert_refresh_secs",
                &self.platform_cert_refresh_secs,
            )
            .field(
                "platform_cert_min_interval_secs",
                &self.platform_cert_min_interval_secs,
            )
            .finish()
    }
}

/// `url` with its password, if any, replaced by `[redacted]`.
fn redact_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2014-flow configuration with `api_base`.
    pub(crate) fn json(api_base: &str) -> String {
        format!(
            r#"{{"appid":"wxd930ea5d5a258f4f","app_secret":"SECRET-S","app_key":"SECRET-K",
               "partner_id":"1900000109","partner_key":"SECRET-P",
               "notify_url":"https://example.com/notify","api_base":"{api_base}"}}"#
        )
    }

    #[test]
    fn defaults() {
        let c = Config::from_json(&json("https://api.weixin.qq.com")).expect("valid");
        assert_eq!(c.input_charset, Charset::Utf8);
        assert_eq!(c.timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn debug_redacts_every_secret() {
        let c = Config::from_json(&json("https://api.weixin.qq.com")).expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("wxd930ea5d5a258f4f"));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://localhost:1",
            "http://[::1]:9",
            "https://api.weixin.qq.com",
            "https://example.com/prefix/",
        ] {
            assert!(Config::from_json(&json(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.weixin.qq.com",
            "http://10.0.0.1",
            "http://128.0.0.1",
            "http://localhost.evil.com",
            "ftp://127.0.0.1",
            "https://u:p@example.com",
            "not a url",
        ] {
            let err = Config::from_json(&json(bad)).expect_err(bad);
            assert!(
                matches!(&err, Error::InvalidConfig { field, .. } if field == "api_base"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn proxies() {
        let with = |proxy: &str| {
            let text = json("https://x.example").replace('}', &format!(r#","proxy":"{proxy}"}}"#));
            Config::from_json(&text)
        };
        for ok in [
            "http://proxy.internal:3128",
            "https://10.0.0.1:8443/",
            "http://user:SECRET-PW@[::1]:3128",
        ] {
            let config = with(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(config.proxy_url().expect("checked").is_some());
            let shown = format!("{config:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        for bad in [
            "socks5://proxy:1080",
            "http://proxy:3128/path",
            "http://u:SECRET-PW@proxy:3128/?q",
            "SECRET-PW",
            "http://",
        ] {
            let err = with(bad).expect_err(bad);
            assert!(
                matches!(&err, Error::InvalidConfig { field, .. } if field == "proxy"),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let twice = json("https://x.example").replace(
            r#""partner_key":"SECRET-P","#,
            r#""partner_key":"SECRET-P","partner_key":"SECRET-Q","#,
        );
        let err = Config::from_json(&twice).expect_err("twice");
        assert!(matches!(&err, Error::InvalidConfig { .. }), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_json() {
        let with_typo = json("https://x.example").replace("\"appid\"", "\"app_id\"");
        assert!(matches!(
            Config::from_json(&with_typo),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            Config::from_json("{"),
            Err(Error::InvalidJson {
                document: "config",
                ..
            })
        ));
    }

    #[test]
    fn token_store_settings() {
        let with = |store: &str| {
            let text =
                json("https://x.example").replace('}', &format!(r#","token_store":{store}}}"#));
            Config::from_json(&text)
        };
        assert_eq!(
            with(r#""memory""#)
                .and_then(|c| c.token_store_setting())
                .ok(),
            Some(TokenStoreSetting::Memory)
        );
        assert!(with(r#""memcached://x""#).is_err());
        let redis = with(r#""redis://:SECRET-R@127.0.0.1:6379/0""#);
        if cfg!(feature = "redis") {
            let config = redis.expect("valid with the redis feature");
            let shown = format!("{config:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("127.0.0.1:6379"), "{shown}");
        } else {
            assert!(redis.is_err());
        }
    }

    #[test]
    fn a_v3_notify_url_is_https_unless_on_loopback() {
        let v3 = |notify_url: &str| {
            serde_json::json!({
                "api": "v3", "appid": "wx1", "notify_url": notify_url, "mchid": "1",
                "merchant_serial_no": "S", "api_v3_key": "0123456789abcdef0123456789abcdef",
                "merchant_private_key": include_str!("../sandbox/keys/merchant_key.pem"),
            })
            .to_string()
        };
        for ok in [
            "https://example.com/n",
            "http://127.0.0.1:8080/n",
            "http://localhost/n",
        ] {
            Config::from_json(&v3(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = Config::from_json(&v3("http://example.com/n")).expect_err("plain http");
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "notify_url"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_say_what_was_expected() {
        assert_eq!(
            without_values(r#"invalid type: string "k", expected a boolean"#),
            "invalid type, expected a boolean"
        );
        assert_eq!(
            without_values("unknown variant `SHA1`, expected `MD5` or `HMAC-SHA256`"),
            "unknown variant, expected `MD5` or `HMAC-SHA256`"
        );
        assert_eq!(
            without_values("missing field `appid`"),
            "missing field `appid`"
        );
    }

    #[test]
    fn gbk_charset() {
        let text = json("https://x.example").replace("}", r#","input_charset":"GBK"}"#);
        let c = Config::from_json(&text).expect("valid");
        assert_eq!(c.input_charset, Charset::Gbk);
    }
}
