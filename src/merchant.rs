//! The validated credentials of one merchant, per API generation, as the
//! client and the notification verifiers use them.
//!
//! A [`crate::Config`] is what a user writes; these are what it means once
//! checked: every key present, parsed and typed. They are built once, when a
//! client is built, and their `Debug` redacts every secret.

use std::fmt;

use crate::charset::Charset;
use crate::secret::Secret;
use crate::sign::SignType;

/// A merchant of the 2014 APP flow.
#[derive(Clone)]
pub struct LegacyMerchant {
    /// The app id.
    pub appid: String,
    /// The app secret (for the access_token).
    pub app_secret: Secret,
    /// The paySignKey of the SHA1 signatures.
    pub app_key: Secret,
    /// The partner (merchant) id.
    pub partner_id: String,
    /// The key of the package and notification MD5.
    pub partner_key: Secret,
    /// Where payment results are posted.
    pub notify_url: String,
    /// The charset of the package.
    pub input_charset: Charset,
}

impl fmt::Debug for LegacyMerchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyMerchant")
            .field("appid", &self.appid)
            .field("partner_id", &self.partner_id)
            .field("notify_url", &self.notify_url)
            .field("input_charset", &self.input_charset)
            .finish_non_exhaustive()
    }
}

/// A merchant of API v2 (XML).
#[derive(Clone)]
pub struct V2Merchant {
    /// The app id.
    pub appid: String,
    /// The merchant id (`mch_id`).
    pub mch_id: String,
    /// The API key of every signature (and, hashed, of refund notifications).
    pub api_key: Secret,
    /// The signature algorithm the merchant chose.
    pub sign_type: SignType,
    /// Where payment and refund results are posted.
    pub notify_url: String,
}

impl fmt::Debug for V2Merchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2Merchant")
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .field("sign_type", &self.sign_type)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}
