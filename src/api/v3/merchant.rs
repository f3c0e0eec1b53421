//! A merchant of API v3 (RSA-signed JSON), as the client and the
//! notification verifier use it: the configuration checked, the keys parsed.
//! Its `Debug` redacts every secret.

use std::fmt;
use std::sync::Arc;

use crate::crypto::rsa::{MerchantKey, VerifyingKey};
use crate::util::secret::Secret;

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
    /// Where refund results are posted, when the configuration names it.
    pub refund_notify_url: Option<String>,
    /// How answers and notifications are verified.
    pub verification: V3Verification,
    /// After a download, how long a serial that is still unknown is refused
    /// without downloading again, in seconds.
    pub unknown_serial_interval_secs: u64,
}

impl fmt::Debug for V3Merchant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3Merchant")
            .field("appid", &self.appid)
            .field("mchid", &self.mchid)
            .field("serial_no", &self.serial_no)
            .field("notify_url", &self.notify_url)
            .field("refund_notify_url", &self.refund_notify_url)
            .field("verification", &self.verification)
            .field(
                "unknown_serial_interval_secs",
                &self.unknown_serial_interval_secs,
            )
            .finish_non_exhaustive()
    }
}
