//! The merchant account the sandbox serves: the public example merchant of
//! the 2014 documentation and the API v2 and v3 examples by default
//! ([`defaults`]), or any account read from the JSON of a client
//! configuration; and the client configurations that point at a sandbox.

use std::fmt;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{Api, Config};
use crate::crypto::sign::SignType;
use crate::util::charset::Charset;
use crate::util::secret::Secret;

/// The public example merchant of the 2014 documentation: the sandbox's
/// default account.
pub mod defaults {
    /// The example app id.
    pub const APPID: &str = "wxd930ea5d5a258f4f";
    /// A sandbox-only app secret (the documentation publishes none).
    pub const APP_SECRET: &str = "db426a9829e4b49a0dcac7b4162da6b6";
    /// The example 128-character paySignKey.
    pub const APP_KEY: &str = "L8LrMqqeGRxST5reouB0K66CaYAWpqhAVsq7ggKkxHCOastWksvuX1uvmvQclxaHoYd3ElNBrNO2DHnnzgfVG9Qs473M3DTOZug5er46FhuGofumV8H2FVR9qkjSlC5K";
    /// The example partner (merchant) id.
    pub const PARTNER_ID: &str = "1900000109";
    /// The example partner key.
    pub const PARTNER_KEY: &str = "8934e7d15453e97507ef794cf7b0519d";
    /// The lifetime of the tokens the sandbox issues, in seconds.
    pub const TOKEN_TTL_SECS: u64 = 7200;
    /// How every access_token the sandbox issues begins; 64 random lower-case
    /// hex digits follow. A token is opaque to clients: the prefix only makes
    /// a leaked one easy to find in logs and output.
    pub const ACCESS_TOKEN_PREFIX: &str = "sandboxtoken";
    /// The example API v2 merchant id.
    pub const MCH_ID: &str = "10000100";
    /// The example API v2 key.
    pub const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    /// How many times a notification is sent before the sandbox gives up.
    pub const NOTIFY_ATTEMPTS: u32 = 8;
    /// The pause before the second delivery; each later one waits longer.
    pub const NOTIFY_RETRY_MS: u64 = 200;
    /// The API v3 merchant id.
    pub const MCHID: &str = "1900000109";
    /// The serial number of the v3 merchant's certificate.
    pub const MERCHANT_SERIAL_NO: &str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";
    /// The v3 merchant's private key (a public test key, see `src/sandbox/keys`).
    pub const MERCHANT_PRIVATE_KEY: &str = include_str!("keys/merchant_key.pem");
    /// The v3 merchant's public key.
    pub const MERCHANT_PUBLIC_KEY: &str = include_str!("keys/merchant_public_key.pem");
    /// The API v3 key.
    pub const API_V3_KEY: &str = "sandboxAPIv3Key00000000000000000";
    /// The id of the sandbox's WeChat Pay public key.
    pub const WECHATPAY_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092024010100000000000001";
}

/// The merchant account the sandbox serves, for both API generations.
///
/// Read from the same JSON as a client [`Config`] (so one file serves both):
/// the client-only keys (`api`, `notify_url`, `api_base`, `timeout_ms`,
/// `token_store`, `token_store_fallback`, `client_cert`, `sandbox`) are
/// accepted and ignored, `token_ttl_secs`, `notify_attempts` and
/// `notify_retry_ms` are the sandbox's own, and every key left out takes its
/// value from [`defaults`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The app id.
    pub appid: String,
    /// 2014 flow: the app secret the token call must present.
    pub app_secret: Secret,
    /// 2014 flow: the app key of the SHA1 signatures.
    pub app_key: Secret,
    /// 2014 flow: the partner id the package must name.
    pub partner_id: String,
    /// 2014 flow: the partner key of the package MD5.
    pub partner_key: Secret,
    /// 2014 flow: the lifetime of issued tokens, in seconds.
    pub token_ttl_secs: u64,
    /// 2014 flow: the charset for [`Sandbox::client_config`](super::Sandbox::client_config)
    /// (a package says its own).
    pub input_charset: Charset,
    /// API v2: the merchant id.
    pub mch_id: String,
    /// API v2: the API key.
    pub api_key: Secret,
    /// API v2: the algorithm the merchant chose, used to sign notifications
    /// (requests say their own with `sign_type`).
    pub sign_type: SignType,
    /// How many times a notification is sent before the sandbox gives up.
    pub notify_attempts: u32,
    /// The pause before the second delivery, in milliseconds; the n-th retry
    /// waits n times this.
    pub notify_retry_ms: u64,
    /// API v3: the merchant id.
    pub mchid: String,
    /// API v3: the serial of the merchant's certificate, as requests must name it.
    pub merchant_serial_no: String,
    /// API v3: the merchant's private key (only for the client configurations
    /// the sandbox hands out).
    pub merchant_private_key: Secret,
    /// API v3: the merchant's public key, which verifies every request.
    pub merchant_public_key: String,
    /// API v3: the API v3 key.
    pub api_v3_key: Secret,
    /// API v3: the id of the sandbox's WeChat Pay public key.
    pub wechatpay_public_key_id: String,
    /// API v3: sign as in certificate mode (serial = platform certificate),
    /// rather than public-key mode.
    pub v3_certificate_mode: bool,
}

/// Client configuration keys a sandbox account file may carry and ignores.
const CLIENT_ONLY_KEYS: [&str; 16] = [
    "api",
    "notify_url",
    "api_base",
    "timeout_ms",
    "token_store",
    "token_store_fallback",
    "client_cert",
    "sandbox",
    "merchant_private_key_file",
    "wechatpay_public_key",
    "wechatpay_public_key_file",
    "platform_cert_refresh_secs",
    "proxy",
    "token_store_ca_file",
    "platform_cert_min_interval_secs",
    "refund_notify_url",
];

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            appid: defaults::APPID.into(),
            app_secret: defaults::APP_SECRET.into(),
            app_key: defaults::APP_KEY.into(),
            partner_id: defaults::PARTNER_ID.into(),
            partner_key: defaults::PARTNER_KEY.into(),
            token_ttl_secs: defaults::TOKEN_TTL_SECS,
            input_charset: Charset::Utf8,
            mch_id: defaults::MCH_ID.into(),
            api_key: defaults::API_KEY.into(),
            sign_type: SignType::Md5,
            notify_attempts: defaults::NOTIFY_ATTEMPTS,
            notify_retry_ms: defaults::NOTIFY_RETRY_MS,
            mchid: defaults::MCHID.into(),
            merchant_serial_no: defaults::MERCHANT_SERIAL_NO.into(),
            merchant_private_key: defaults::MERCHANT_PRIVATE_KEY.into(),
            merchant_public_key: defaults::MERCHANT_PUBLIC_KEY.into(),
            api_v3_key: defaults::API_V3_KEY.into(),
            wechatpay_public_key_id: defaults::WECHATPAY_PUBLIC_KEY_ID.into(),
            v3_certificate_mode: false,
        }
    }
}

impl SandboxConfig {
    /// Parses a JSON account (see the type's documentation).
    pub fn from_json(json: &str) -> crate::Result<SandboxConfig> {
        let invalid = |reason: String| crate::Error::InvalidConfig {
            field: "sandbox".into(),
            reason,
        };
        let mut value: Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            for key in CLIENT_ONLY_KEYS {
                map.remove(key);
            }
        }
        let config: SandboxConfig =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if config.token_ttl_secs == 0 {
            return Err(crate::Error::config("token_ttl_secs", "must be positive"));
        }
        Ok(config)
    }

    /// A client configuration for this account in API generation `api`
    /// against a sandbox at `base_url`, as JSON (with the keys in clear).
    pub fn client_config_json_for(&self, base_url: &str, api: Api) -> Value {
        let base_url = base_url.trim_end_matches('/');
        let notify_url = format!("{base_url}/sandbox/notify");
        match api {
            Api::Legacy => json!({
                "appid": self.appid,
                "app_secret": self.app_secret.expose(),
                "app_key": self.app_key.expose(),
                "partner_id": self.partner_id,
                "partner_key": self.partner_key.expose(),
                "notify_url": notify_url,
                "api_base": base_url,
                "input_charset": self.input_charset.as_str(),
            }),
            Api::V2 => json!({
                "api": "v2",
                "appid": self.appid,
                "mch_id": self.mch_id,
                "api_key": self.api_key.expose(),
                "sign_type": self.sign_type.as_str(),
                "notify_url": notify_url,
                "api_base": base_url,
            }),
            Api::V3 => {
                let mut config = json!({
                    "api": "v3",
                    "appid": self.appid,
                    "mchid": self.mchid,
                    "merchant_private_key": self.merchant_private_key.expose(),
                    "merchant_serial_no": self.merchant_serial_no,
                    "api_v3_key": self.api_v3_key.expose(),
                    "notify_url": notify_url,
                    "api_base": base_url,
                });
                if !self.v3_certificate_mode {
                    config["wechatpay_public_key"] = super::v3::PLATFORM_PUBLIC_KEY.into();
                    config["wechatpay_public_key_id"] =
                        self.wechatpay_public_key_id.as_str().into();
                }
                config
            }
        }
    }

    /// The 2014-flow client configuration as JSON (see
    /// [`SandboxConfig::client_config_json_for`]).
    pub fn client_config_json(&self, base_url: &str) -> Value {
        self.client_config_json_for(base_url, Api::Legacy)
    }

    /// A 2014-flow client configuration for this account against a sandbox at `base_url`.
    pub fn client_config_for(&self, base_url: &str) -> crate::Result<Config> {
        Config::from_json(&self.client_config_json(base_url).to_string())
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("appid", &self.appid)
            .field("app_secret", &self.app_secret)
            .field("app_key", &self.app_key)
            .field("partner_id", &self.partner_id)
            .field("partner_key", &self.partner_key)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("mch_id", &self.mch_id)
            .field("api_key", &self.api_key)
            .field("sign_type", &self.sign_type)
            .field("mchid", &self.mchid)
            .field("merchant_serial_no", &self.merchant_serial_no)
            .field("api_v3_key", &self.api_v3_key)
            .field("v3_certificate_mode", &self.v3_certificate_mode)
            .finish_non_exhaustive()
    }
}
