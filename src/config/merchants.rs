//! What each generation's keys in a [`Config`] mean: the checked, typed
//! credentials ([`LegacyMerchant`], [`V2Merchant`], [`V3Merchant`]), keys
//! read from their files and parsed once.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Api, Config};
use crate::api::legacy::merchant::LegacyMerchant;
use crate::api::v2::merchant::V2Merchant;
use crate::api::v3::merchant::{V3Merchant, V3Verification};
use crate::crypto::rsa::{MerchantKey, VerifyingKey};
use crate::error::{Error, Result};
use crate::util::key_file;
use crate::util::secret::Secret;

/// The longest `platform_cert_refresh_secs` taken (30 days).
pub const MAX_PLATFORM_CERT_REFRESH_SECS: u64 = 30 * 24 * 3600;

/// The default of `platform_cert_min_interval_secs`.
pub const DEFAULT_PLATFORM_CERT_MIN_INTERVAL_SECS: u64 = 60;

/// The largest `platform_cert_min_interval_secs` taken (a day); larger values
/// are taken as this.
pub const MAX_PLATFORM_CERT_MIN_INTERVAL_SECS: u64 = 24 * 3600;

impl Config {
    /// API v3's credentials, with the keys read and parsed; an error names
    /// the first missing or unusable key.
    pub fn v3_merchant(&self) -> Result<V3Merchant> {
        let read = |field: &str, path: &PathBuf, inline_field: &str| {
            key_file::read_text(field, path, inline_field)
        };
        let key_pem = match (&self.merchant_private_key, &self.merchant_private_key_file) {
            (Some(pem), None) => Secret::new(pem.expose()),
            (None, Some(path)) => Secret::new(
                read("merchant_private_key_file", path, "merchant_private_key")?.as_str(),
            ),
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "merchant_private_key",
                    "give merchant_private_key or merchant_private_key_file, not both",
                ))
            }
            (None, None) => {
                return Err(Error::config(
                    "merchant_private_key",
                    "is required for api \"v3\"",
                ))
            }
        };
        let key = MerchantKey::from_pem(key_pem.expose())
            .map_err(|e| Error::config("merchant_private_key", e.to_string()))?;
        let api_v3_key = required_secret("api_v3_key", &self.api_v3_key, self.api)?;
        if api_v3_key.expose().len() != 32 {
            return Err(Error::config("api_v3_key", "must be exactly 32 bytes"));
        }
        let public_pem = match (&self.wechatpay_public_key, &self.wechatpay_public_key_file) {
            (Some(pem), None) => Some(pem.clone()),
            // A public key: nothing to wipe.
            (None, Some(path)) => {
                Some(read("wechatpay_public_key_file", path, "wechatpay_public_key")?.to_string())
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "wechatpay_public_key",
                    "give wechatpay_public_key or wechatpay_public_key_file, not both",
                ))
            }
        };
        let verification = match public_pem {
            Some(pem) => V3Verification::PublicKey {
                id: required_text(
                    "wechatpay_public_key_id",
                    &self.wechatpay_public_key_id,
                    self.api,
                )?,
                key: VerifyingKey::from_public_key_pem(&pem)
                    .map_err(|e| Error::config("wechatpay_public_key", e.to_string()))?,
            },
            None => V3Verification::Certificates {
                refresh_secs: self
                    .platform_cert_refresh_secs
                    .unwrap_or(12 * 3600)
                    .clamp(60, MAX_PLATFORM_CERT_REFRESH_SECS),
            },
        };
        Ok(V3Merchant {
            appid: self.appid.clone(),
            mchid: required_text("mchid", &self.mchid, self.api)?,
            serial_no: required_text("merchant_serial_no", &self.merchant_serial_no, self.api)?,
            key: Arc::new(key),
            api_v3_key,
            notify_url: self.notify_url.clone(),
            refund_notify_url: self.refund_notify_url.clone(),
            verification,
            unknown_serial_interval_secs: self
                .platform_cert_min_interval_secs
                .unwrap_or(DEFAULT_PLATFORM_CERT_MIN_INTERVAL_SECS)
                .min(MAX_PLATFORM_CERT_MIN_INTERVAL_SECS),
        })
    }

    /// The 2014 flow's credentials; an error names the first missing key.
    pub fn legacy_merchant(&self) -> Result<LegacyMerchant> {
        Ok(LegacyMerchant {
            appid: self.appid.clone(),
            app_secret: required_secret("app_secret", &self.app_secret, self.api)?,
            app_key: required_secret("app_key", &self.app_key, self.api)?,
            partner_id: required_text("partner_id", &self.partner_id, self.api)?,
            partner_key: required_secret("partner_key", &self.partner_key, self.api)?,
            notify_url: self.notify_url.clone(),
            input_charset: self.input_charset,
        })
    }

    /// API v2's credentials; an error names the first missing key.
    pub fn v2_merchant(&self) -> Result<V2Merchant> {
        Ok(V2Merchant {
            appid: self.appid.clone(),
            mch_id: required_text("mch_id", &self.mch_id, self.api)?,
            api_key: required_secret("api_key", &self.api_key, self.api)?,
            sign_type: self.sign_type,
            notify_url: self.notify_url.clone(),
            refund_notify_url: self.refund_notify_url.clone(),
        })
    }
}

fn required_text(field: &str, value: &Option<String>, api: Api) -> Result<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.clone()),
        _ => Err(Error::config(
            field,
            format!("is required for api {:?}", api.as_str()),
        )),
    }
}

fn required_secret(field: &str, value: &Option<Secret>, api: Api) -> Result<Secret> {
    match value {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => Err(Error::config(
            field,
            format!("is required for api {:?}", api.as_str()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::json;
    use super::*;
    use crate::crypto::sign::SignType;

    #[test]
    fn each_generation_requires_its_own_keys() {
        let legacy_without_key = json("https://x.example").replace(r#""app_key":"SECRET-K","#, "");
        let err = Config::from_json(&legacy_without_key).expect_err("app_key missing");
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "app_key"),
            "{err}"
        );

        let v2 = r#"{"api":"v2","appid":"wx1","notify_url":"https://x.example/n",
                     "mch_id":"10000100","api_key":"SECRET-A","sign_type":"HMAC-SHA256"}"#;
        let c = Config::from_json(v2).expect("valid v2");
        assert_eq!(c.api, Api::V2);
        assert_eq!(
            c.api_base_url().expect("default").as_str(),
            "https://api.mch.weixin.qq.com/"
        );
        let m = c.v2_merchant().expect("v2 merchant");
        assert_eq!(m.sign_type, SignType::HmacSha256);
        assert!(!format!("{c:?} {m:?}").contains("SECRET"));
        let err =
            Config::from_json(&v2.replace(r#""api_key":"SECRET-A","#, "")).expect_err("api_key");
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "api_key"),
            "{err}"
        );
        assert!(Config::from_json(&v2.replace("HMAC-SHA256", "SHA1")).is_err());
    }

    #[test]
    fn a_pasted_key_never_reaches_an_error() {
        const PEM: &str =
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n-----END PRIVATE KEY-----\n";
        let config = |api: &str, extra: serde_json::Value| {
            let mut json = serde_json::json!({
                "api": api, "appid": "wx1", "notify_url": "https://example.com/n",
                "mch_id": "1", "api_key": "192006250b4c09247ec02edce69f6a2d",
                "mchid": "1", "merchant_serial_no": "S",
                "api_v3_key": "0123456789abcdef0123456789abcdef",
            });
            if api == "v2" {
                for v3_only in ["mchid", "merchant_serial_no", "api_v3_key"] {
                    json.as_object_mut().expect("object").remove(v3_only);
                }
            } else {
                for v2_only in ["mch_id", "api_key"] {
                    json.as_object_mut().expect("object").remove(v2_only);
                }
            }
            json.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            json.to_string()
        };
        let merchant_key = include_str!("../sandbox/keys/merchant_key.pem");
        for (json, field) in [
            (
                config("v2", serde_json::json!({"client_cert": PEM})),
                "client_cert",
            ),
            (
                config("v2", serde_json::json!({"sign_type": PEM})),
                "sign_type",
            ),
            (
                config(
                    "v2",
                    serde_json::json!({"client_cert": {"pkcs12_file": [PEM]}}),
                ),
                "client_cert.pkcs12_file",
            ),
            (
                config("v3", serde_json::json!({"merchant_private_key_file": PEM})),
                "merchant_private_key_file",
            ),
            (
                config(
                    "v3",
                    serde_json::json!({"merchant_private_key": merchant_key,
                        "wechatpay_public_key_id": "P", "wechatpay_public_key_file": PEM}),
                ),
                "wechatpay_public_key_file",
            ),
        ] {
            let message = Config::from_json(&json).expect_err(field).to_string();
            assert!(message.contains(field), "{field}: {message}");
            assert!(
                !message.contains("MIIE") && !message.contains("BEGIN"),
                "{field}: {message}"
            );
        }
    }

    #[test]
    fn durations_past_their_range_are_taken_as_its_bound() {
        let v3 = |extra: serde_json::Value| {
            let mut json = serde_json::json!({
                "api": "v3", "appid": "wx1", "notify_url": "https://example.com/n", "mchid": "1",
                "merchant_serial_no": "S", "api_v3_key": "0123456789abcdef0123456789abcdef",
                "merchant_private_key": include_str!("../sandbox/keys/merchant_key.pem"),
            });
            json.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            Config::from_json(&json.to_string())
                .and_then(|c| c.v3_merchant())
                .expect("valid")
        };
        let merchant = v3(serde_json::json!({
            "platform_cert_refresh_secs": u64::MAX,
            "platform_cert_min_interval_secs": u64::MAX,
        }));
        assert!(matches!(
            merchant.verification,
            V3Verification::Certificates { refresh_secs } if refresh_secs == MAX_PLATFORM_CERT_REFRESH_SECS
        ));
        assert_eq!(
            merchant.unknown_serial_interval_secs,
            MAX_PLATFORM_CERT_MIN_INTERVAL_SECS
        );
        let merchant = v3(serde_json::json!({"platform_cert_refresh_secs": 0}));
        assert!(matches!(
            merchant.verification,
            V3Verification::Certificates { refresh_secs: 60 }
        ));
    }

    #[test]
    fn key_files_are_bounded() {
        let v3 = r#"{"api":"v3","appid":"x","notify_url":"http://x","merchant_private_key_file":"/dev/zero"}"#
            .replace("http://x", "https://x");
        let err = Config::from_json(&v3).expect_err("not a key");
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "merchant_private_key_file"),
            "{err}"
        );
    }
}
