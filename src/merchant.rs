//! The validated credentials of one merchant, per API generation, as the
//! client and the notification verifiers use them.
//!
//! A [`crate::Config`] is what a user writes; these are what it means once
//! checked: every key present, parsed and typed. They are built once, when a
//! client is built, and their `Debug` redacts every secret.

use std::fmt;
use std::sync::Arc;

use crate::charset::Charset;
use crate::rsa::{MerchantKey, VerifyingKey};
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

/// How an API v3 merchant verifies WeChat Pay's signatures.
#[derive(Clone)]
pub enum V3Verification {
    /// With WeChat Pay's public key, named by its id in `Wechatpay-Serial`.
    PublicKey {
        /// `PUB_KEY_ID_...`.
        id: String,
        /// The key.
        key: VerifyingKey,
    },
    /// With platform certificates downloaded from `/v3/certificates`.
    Certificates {
        /// How often they are downloaded again, in seconds.
        refresh_secs: u64,
    },
}

impl fmt::Debug for V3Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V3Verification::PublicKey { id, .. } => f
                .debug_struct("PublicKey")
                .field("id", id)
                .finish_non_exhaustive(),
            V3Verification::Certificates { refresh_secs } => f
                .debug_struct("Certificates")
                .field("refresh_secs", refresh_secs)
                .finish(),
        }
    }
}

/// A merchant of API v3 (RSA-signed JSON).
#[derive(Clone)]
pub struct V3Merchant {
    /// The app id.
    pub appid: String,
    /// The merchant id (`mchid`).
    pub mchid: String,
    /// The serial number of the merchant's certificate.
    pub serial_no: String,
    /// The merchant's private key, parsed.
    pub key: Arc<MerchantKey>,
    /// The API v3 key (32 bytes) of notifications and certificate downloads.
    pub api_v3_key: Secret,
    /// Where payment and refund results are posted.
    pub notify_url: String,
    /// How answers and notifications are verified.
    pub verification: V3Verification,
}

impl fmt::Debug for V3Merchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3Merchant")
            .field("appid", &self.appid)
            .field("mchid", &self.mchid)
            .field("serial_no", &self.serial_no)
            .field("notify_url", &self.notify_url)
            .field("verification", &self.verification)
            .finish_non_exhaustive()
    }
}
