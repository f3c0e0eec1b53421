//! A merchant's configuration: ids, secrets, where the gateway is, and limits.
//!
//! Read from JSON (unknown keys are an error, so a typo never silently drops a
//! setting) and validated once, when a client is built. `Debug` redacts every
//! secret.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

use crate::charset::Charset;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The production gateway of the 2014 APP flow.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// The total timeout of one HTTP exchange when the config sets none.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// A merchant's configuration for the 2014 APP flow.
///
/// JSON keys are the field names. `api_base`, `input_charset` and `timeout_ms`
/// are optional.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The app's id on the WeChat open platform (`wx...`).
    pub appid: String,
    /// The app secret; used only to fetch an access_token.
    pub app_secret: Secret,
    /// The 128-character `paySignKey`; used only inside SHA1 signatures, never sent.
    pub app_key: Secret,
    /// The Tenpay merchant number (`partner`).
    pub partner_id: String,
    /// The merchant key of the package MD5 signature.
    pub partner_key: Secret,
    /// Where WeChat posts the asynchronous payment result (at most 255 bytes).
    pub notify_url: String,
    /// The gateway base URL; `https://` unless the host is a loopback address.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// The charset the package is hashed and percent-encoded in.
    #[serde(default)]
    pub input_charset: Charset,
    /// The total timeout of one HTTP exchange, in milliseconds (also the
    /// bound on each exchange with a shared token store).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Where the access_token lives: `memory` (the default: in this client)
    /// or `redis://HOST:PORT/DB` (shared by every process of the merchant;
    /// needs the `redis` cargo feature).
    #[serde(default)]
    pub token_store: Option<String>,
    /// When the shared token store cannot be reached, keep working with this
    /// process's own token and log a warning, instead of failing the call.
    #[serde(default)]
    pub token_store_fallback: bool,
}

/// Where a client keeps its access_token, as the configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStoreSetting {
    /// In the client's memory.
    Memory,
    /// In Redis at this URL.
    Redis(String),
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl Config {
    /// Parses and validates a JSON configuration.
    pub fn from_json(json: &str) -> Result<Config> {
        let config: Config = serde_json::from_str(json).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => Error::config("config", e.to_string()),
            _ => Error::InvalidJson {
                document: "config",
                reason: e.to_string(),
            },
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; [`crate::Client::new`] calls this.
    pub fn validate(&self) -> Result<()> {
        require_non_empty("appid", &self.appid)?;
        require_non_empty("partner_id", &self.partner_id)?;
        for (field, secret) in [
            ("app_secret", &self.app_secret),
            ("app_key", &self.app_key),
            ("partner_key", &self.partner_key),
        ] {
            if secret.is_empty() {
                return Err(Error::config(field, "must not be empty"));
            }
        }
        if self.notify_url.len() > 255 {
            return Err(Error::config("notify_url", "is longer than 255 bytes"));
        }
        let notify = Url::parse(&self.notify_url)
            .map_err(|e| Error::config("notify_url", format!("is not a URL ({e})")))?;
        if !matches!(notify.scheme(), "http" | "https") {
            return Err(Error::config("notify_url", "must be an http or https URL"));
        }
        self.api_base_url()?;
        self.token_store_setting()?;
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            return Err(Error::config(
                "timeout_ms",
                "must be between 1 and 300000 milliseconds",
            ));
        }
        Ok(())
    }

    /// The parsed `api_base`, checked: `https://`, or `http://` for a loopback
    /// host only (`127.0.0.0/8`, `localhost`, `[::1]`).
    pub fn api_base_url(&self) -> Result<Url> {
        let url = Url::parse(&self.api_base)
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

    /// The parsed `token_store`.
    pub fn token_store_setting(&self) -> Result<TokenStoreSetting> {
        match self.token_store.as_deref() {
            None | Some("memory") => Ok(TokenStoreSetting::Memory),
            Some(url) if url.starts_with("redis://") => {
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
                "must be \"memory\" or a redis://HOST:PORT/DB URL",
            )),
        }
    }

    /// The total timeout of one HTTP exchange.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
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
            .field("appid", &self.appid)
            .field("app_secret", &self.app_secret)
            .field("app_key", &self.app_key)
            .field("partner_id", &self.partner_id)
            .field("partner_key", &self.partner_key)
            .field("notify_url", &self.notify_url)
            .field("api_base", &self.api_base)
            .field("input_charset", &self.input_charset)
            .field("timeout_ms", &self.timeout_ms)
            .field(
                "token_store",
                &self.token_store.as_deref().map(redact_url_password),
            )
            .field("token_store_fallback", &self.token_store_fallback)
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
mod tests {
    use super::*;

    fn json(api_base: &str) -> String {
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
    fn gbk_charset() {
        let text = json("https://x.example").replace("}", r#","input_charset":"GBK"}"#);
        let c = Config::from_json(&text).expect("valid");
        assert_eq!(c.input_charset, Charset::Gbk);
    }
}
